"""What the store writes is read back exactly by plain delta-rs and by Spark (snapshot file list)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from deltalake import DeltaTable
from mlflow.entities import Metric, Param, RunStatus, RunTag

from sparkml_ops.lake import TABLES
from sparkml_ops.tracking.state import latest_by

VALUES = [0.5, -1.25, 1e-300, 1.7976931348623157e308, math.inf, -math.inf, float("nan"), 0.0, 3.0]


@pytest.fixture
def written(store, root: Path):
    """Two runs with exact metric points, params, tags (one deleted) and a finished status."""
    experiment_id = store.create_experiment("cross-engine")
    runs = []
    expected_metrics = set()
    for r in range(2):
        run_id = store.create_run(experiment_id, "ann", 1_000 + r, [], f"run-{r}").info.run_id
        metrics = [Metric("loss", v, 1_700_000_000_000 + i, i * 1_000_000_007) for i, v in enumerate(VALUES)]
        metrics.append(Metric("acc", 0.25 * r, 5, 0))
        store.log_batch(run_id, metrics, [Param("lr", f"0.{r}1"), Param("ünïcode", "välue ✓")],
                        [RunTag("team", "ads"), RunTag("gone", "soon")])
        store.delete_tag(run_id, "gone")
        store.update_run_info(run_id, RunStatus.FINISHED, 9_000 + r, None)
        expected_metrics |= {(run_id, m.key, repr(float(m.value)), m.timestamp, m.step) for m in metrics}
        runs.append(run_id)
    store.flush()
    return experiment_id, runs, expected_metrics


def _metric_rows(rows) -> set:
    return {(r["run_id"], r["key"], repr(float(r["value"])), r["timestamp"], r["step"]) for r in rows}


def test_delta_rs_reads_exact_values(written, root):
    experiment_id, runs, expected_metrics = written
    metrics = DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table()
    assert metrics.num_rows == len(expected_metrics)
    assert _metric_rows(metrics.to_pylist()) == expected_metrics

    params = DeltaTable(str(root / "tables" / "params")).to_pyarrow_table()
    assert sorted((r["run_id"], r["key"], r["value"]) for r in params.to_pylist()) == sorted(
        [(run, "lr", f"0.{i}1") for i, run in enumerate(runs)] + [(run, "ünïcode", "välue ✓") for run in runs])

    tags = latest_by(DeltaTable(str(root / "tables" / "tags")).to_pyarrow_table(), ["run_id", "key"], ["seq"])
    state = {(r["run_id"], r["key"]): (r["value"], r["deleted"]) for r in tags.to_pylist()}
    for run in runs:
        assert state[(run, "team")] == ("ads", False)
        assert state[(run, "gone")] == (None, True)  # a tombstone row, newer than the original
        assert state[(run, "mlflow.runName")][0].startswith("run-")

    run_rows = latest_by(DeltaTable(str(root / "tables" / "runs")).to_pyarrow_table(), ["run_id"], ["seq"])
    assert {(r["run_id"], r["status"], r["end_time"], r["experiment_id"]) for r in run_rows.to_pylist()} == {
        (run, "FINISHED", 9_000 + i, experiment_id) for i, run in enumerate(runs)}


def test_tables_stay_plain_parquet_readable(written, root):
    """No deletion vectors or column mapping: the file list is the whole truth for any reader."""
    for name, spec in TABLES.items():
        dt = DeltaTable(str(root / "tables" / name))
        protocol = dt.protocol()
        assert protocol.min_reader_version == 1, (name, protocol)
        assert not (protocol.reader_features or [])
        assert dt.schema().to_arrow().names == spec.schema.names


@pytest.mark.spark
def test_spark_reads_the_snapshot_file_list(written, root, spark):
    experiment_id, runs, expected_metrics = written
    files = DeltaTable(str(root / "tables" / "metrics")).file_uris()
    frame = spark.read.parquet(*files)
    assert dict(frame.dtypes)["value"] == "double" and dict(frame.dtypes)["step"] == "bigint"
    rows = [row.asDict() for row in frame.select("run_id", "key", "value", "timestamp", "step").collect()]
    assert len(rows) == len(expected_metrics)
    assert _metric_rows(rows) == expected_metrics

    frame.createOrReplaceTempView("metrics_snapshot")
    latest = spark.sql(
        "SELECT run_id, max_by(value, step) AS last_loss, count(*) AS points FROM metrics_snapshot "
        "WHERE key = 'loss' GROUP BY run_id"
    ).collect()
    assert {r.run_id: (r.last_loss, r.points) for r in latest} == {run: (3.0, len(VALUES)) for run in runs}

    params = spark.read.parquet(*DeltaTable(str(root / "tables" / "params")).file_uris())
    unicode_values = {r.value for r in params.where("key = 'ünïcode'").collect()}
    assert unicode_values == {"välue ✓"}
