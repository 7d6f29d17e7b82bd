"""Embedded SQL (no Spark): every view's shape, runs_wide against mlflow.search_runs, refreshes."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag

from sparkml_ops import sql
from sparkml_ops.errors import BadInput, NotFound
from tests.sql.conftest import as_dict, flush, search_all, using

COLUMNS = {
    "experiments": ["experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time",
                    "last_update_time"],
    "experiment_tags": ["experiment_id", "key", "value"],
    "runs": ["run_id", "experiment_id", "run_name", "user_id", "status", "start_time", "end_time",
             "lifecycle_stage", "artifact_uri", "deleted_time"],
    "params": ["run_id", "key", "value"],
    "tags": ["run_id", "key", "value"],
    "metrics": ["run_id", "key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest"],
    "latest_metrics": ["run_id", "key", "value", "timestamp", "step", "model_id", "dataset_name",
                       "dataset_digest"],
    "inputs": ["run_id", "kind", "name", "digest", "source_type", "source", "schema", "profile", "tags",
               "context", "model_id"],
    "outputs": ["run_id", "model_id", "step"],
    "logged_models": ["model_id", "experiment_id", "name", "artifact_location", "creation_timestamp",
                      "last_updated_timestamp", "model_type", "source_run_id", "status", "status_message",
                      "lifecycle_stage"],
    "logged_model_tags": ["model_id", "key", "value"],
    "logged_model_params": ["model_id", "key", "value"],
    "registered_models": ["name", "description", "creation_timestamp", "last_updated_timestamp"],
    "model_versions": ["name", "version", "creation_timestamp", "last_updated_timestamp", "description", "user_id",
                       "current_stage", "source", "storage_location", "run_id", "run_link", "status",
                       "status_message", "model_id"],
    "model_aliases": ["name", "alias", "version"],
    "registered_model_tags": ["name", "key", "value"],
    "model_version_tags": ["name", "version", "key", "value"],
    "runs_wide": ["run_id", "experiment_id", "experiment_name", "run_name", "user_id", "status", "start_time",
                  "end_time", "lifecycle_stage", "artifact_uri", "params", "metrics", "tags"],
}


def expected_counts(uri: str) -> dict[str, int]:
    runs = search_all(uri)
    return {
        "experiments": 3, "experiment_tags": 1, "runs": 6,
        "params": sum(len(r.data.params) for r in runs),
        "tags": sum(len(r.data.tags) for r in runs),
        "metrics": 15,
        "latest_metrics": sum(len(r.data.metrics) for r in runs),
        "inputs": 1, "outputs": 1, "logged_models": 1, "logged_model_tags": 0, "logged_model_params": 0,
        "registered_models": 1, "model_versions": 2, "model_aliases": 1, "registered_model_tags": 1,
        "model_version_tags": 1, "runs_wide": 6,
    }


def test_every_view_has_its_columns_and_rows(filled):
    root, uri, _ = filled
    assert list(COLUMNS) == list(sql.VIEW_NAMES)
    counts = expected_counts(uri)
    for view, columns in COLUMNS.items():
        table = sql.query(f"SELECT * FROM {view}", root)
        assert table.column_names == columns, view
        assert table.num_rows == counts[view], view


def test_runs_wide_agrees_with_search_runs(filled):
    root, uri, _ = filled
    wide = {r["run_id"]: r for r in sql.query("SELECT * FROM runs_wide", root).to_pylist()}
    runs = search_all(uri)
    assert set(wide) == {r.info.run_id for r in runs}
    names = {e.experiment_id: e.name for e in mlflow.MlflowClient(uri).search_experiments(view_type=3)}
    for run in runs:
        row = wide[run.info.run_id]
        assert as_dict(row["params"]) == (run.data.params or None)
        got_metrics = as_dict(row["metrics"]) or {}
        assert set(got_metrics) == set(run.data.metrics)
        for key, value in run.data.metrics.items():
            assert (math.isnan(value) and math.isnan(got_metrics[key])) or got_metrics[key] == value
        assert as_dict(row["tags"]) == run.data.tags
        assert row["status"] == run.info.status
        assert row["lifecycle_stage"] == run.info.lifecycle_stage
        assert (row["start_time"], row["end_time"]) == (run.info.start_time, run.info.end_time)
        assert row["run_name"] == run.info.run_name
        assert row["experiment_name"] == names[run.info.experiment_id]
        assert row["artifact_uri"] == run.info.artifact_uri


def test_latest_metric_follows_mlflow_semantics(filled):
    root, _, ids = filled
    rows = sql.query("SELECT run_id, value, step FROM latest_metrics WHERE key = 'auc'", root).to_pylist()
    latest = {r["run_id"]: (r["value"], r["step"]) for r in rows}
    assert latest[ids["a"]] == (0.70, 2)  # highest step, not the last logged
    assert latest[ids["b"]] == (0.80, 5)  # a higher step beats a later timestamp
    assert latest[ids["c"]] == (0.75, 1)  # tie on step and timestamp: the larger value


def test_deleted_tags_and_runs(filled):
    root, _, ids = filled
    tags = sql.query(f"SELECT key FROM tags WHERE run_id = '{ids['a']}'", root).column("key").to_pylist()
    assert "note" not in tags and "team" in tags
    tombstones = sql.query("SELECT count(*) AS n FROM sparkml_state_tags WHERE deleted", root)
    assert tombstones.column("n")[0].as_py() == 1
    stage = sql.query(f"SELECT lifecycle_stage FROM runs WHERE run_id = '{ids['e']}'", root)
    assert stage.column("lifecycle_stage").to_pylist() == ["deleted"]
    maps = sql.query(f"SELECT params, metrics FROM runs_wide WHERE run_id = '{ids['d']}'", root).to_pylist()
    assert maps == [{"params": None, "metrics": None}]


def test_issue_example_query_and_pandas_output(filled):
    root, _, ids = filled
    frame = sql.query("SELECT run_id, params['lr'] AS lr, metrics['auc'] AS auc FROM runs_wide "
                      "WHERE experiment_name = 'ctr-model' ORDER BY auc DESC LIMIT 10", root, output="pandas")
    assert isinstance(frame, pd.DataFrame)
    assert frame["run_id"].tolist()[:4] == [ids["e"], ids["b"], ids["c"], ids["a"]]
    assert frame["lr"].tolist()[:2] == ["1.0", "0.01"]
    assert pd.isna(frame["auc"].iloc[-1])  # run d has no metrics: NULLS LAST when descending, as in Spark


def test_views_follow_new_writes_and_compaction(tracking_uri, root):
    client = mlflow.MlflowClient()
    exp = client.create_experiment("grow")
    first = client.create_run(exp).info.run_id
    client.log_batch(first, metrics=[Metric("m", 1.0, 1, 0)])
    flush(tracking_uri)
    assert sql.query("SELECT count(*) AS n FROM runs", str(root)).column("n")[0].as_py() == 1
    for i in range(3):  # appended files only: the catalog merges just the new ones
        run_id = client.create_run(exp).info.run_id
        client.log_batch(run_id, metrics=[Metric("m", float(i), 1, 0)])
    client.log_batch(first, metrics=[Metric("m", 9.0, 2, 1)])
    wide = sql.query("SELECT run_id, metrics['m'] AS m FROM runs_wide", str(root))  # flushes own writes first
    assert wide.num_rows == 4
    assert dict(zip(wide.column("run_id").to_pylist(), wide.column("m").to_pylist(), strict=True))[first] == 9.0
    from sparkml_ops.lake.location import parse_root
    from sparkml_ops.lake.maintenance import maintain

    maintain(parse_root(tracking_uri), vacuum=False)  # compaction removes files: a full reload
    client.log_batch(first, metrics=[Metric("m", 10.0, 3, 2)])
    flush(tracking_uri)
    again = sql.query(f"SELECT value, step FROM latest_metrics WHERE run_id = '{first}'", str(root)).to_pylist()
    assert again == [{"value": 10.0, "step": 2}]
    assert sql.query("SELECT count(*) AS n FROM metrics", str(root)).column("n")[0].as_py() == 6


def test_incremental_refresh_equals_a_fresh_load(tracking_uri, root):
    client = mlflow.MlflowClient()
    exp = client.create_experiment("inc")
    keep, gone = (client.create_run(exp, run_name=n).info.run_id for n in ("keep", "gone"))
    client.log_batch(keep, metrics=[Metric("m", 1.0, 1, 5)], params=[Param("p", "1")],
                     tags=[RunTag("t", "a"), RunTag("u", "b")])
    flush(tracking_uri)
    every = [f"SELECT * FROM {v}" for v in sql.VIEW_NAMES if v != "metrics"]
    for text in every:  # loads the catalog
        sql.query(text, str(root))
    client.log_batch(keep, metrics=[Metric("m", 7.0, 9, 3)])  # a lower step: not the latest
    client.log_batch(keep, metrics=[Metric("m", 2.0, 2, 6)], tags=[RunTag("t", "c")])
    client.delete_tag(keep, "u")
    client.delete_run(gone)
    client.rename_experiment(exp, "inc-renamed")
    client.create_run(exp, run_name="new")
    flush(tracking_uri)
    merged = {text: _rows(sql.query(text, str(root))) for text in every}
    sql.clear_cache()
    fresh = {text: _rows(sql.query(text, str(root))) for text in every}
    assert merged == fresh
    wide = {r["run_name"]: r for r in sql.query("SELECT * FROM runs_wide", str(root)).to_pylist()}
    assert as_dict(wide["keep"]["metrics"]) == {"m": 2.0}
    assert as_dict(wide["keep"]["tags"]) == {"mlflow.runName": "keep", "t": "c"}
    assert wide["gone"]["lifecycle_stage"] == "deleted"
    assert {r["experiment_name"] for r in wide.values()} == {"inc-renamed"}


def _rows(table) -> list:
    """Rows as comparable text; maps (lists of pairs) compare as sorted pairs, whatever their entry order."""
    def cell(v):
        return sorted(v) if isinstance(v, list) else v

    return sorted(repr(sorted((k, str(cell(v))) for k, v in row.items())) for row in table.to_pylist())


def test_fresh_root_has_empty_views(tracking_uri, root):
    mlflow.MlflowClient().search_experiments()  # creates the root and its default experiment
    flush(tracking_uri)
    assert sql.query("SELECT count(*) AS n FROM runs_wide", str(root)).column("n")[0].as_py() == 0
    assert sql.query("SELECT name FROM experiments", str(root)).column("name").to_pylist() == ["Default"]
    assert sql.query("SELECT * FROM metrics", str(root)).num_rows == 0


def test_root_defaults_to_mlflow_tracking_uri(filled):
    _, uri, ids = filled
    with using(uri):
        names = sql.query("SELECT run_name FROM runs ORDER BY run_name").column("run_name").to_pylist()
    assert names == sorted(ids)


def test_missing_root_and_bad_arguments(filled, tmp_path):
    root, _, _ = filled
    with pytest.raises(NotFound, match="no sparkml_ops tracking root"):
        sql.query("SELECT 1", str(tmp_path / "nothing"))
    with pytest.raises(BadInput, match="output='xml'"):
        sql.query("SELECT 1", root, output="xml")
    with pytest.raises(BadInput, match="empty or not text"):
        sql.query("   ", root)
    with pytest.raises(BadInput, match="empty or not text"):
        sql.query(42, root)
