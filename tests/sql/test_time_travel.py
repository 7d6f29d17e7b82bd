"""as_of: the tracking state as it was at a runs-table version or an instant, in both engines."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag

from sparkml_ops import sql
from sparkml_ops.errors import BadInput
from sparkml_ops.sql.snapshots import parse_as_of
from tests.sql.conftest import flush

WIDE = "SELECT run_name, status, lifecycle_stage, params, metrics, tags FROM runs_wide ORDER BY run_name"


def _plain(rows):
    return [{k: (dict(v) if isinstance(v, list) else v) for k, v in row.items()} for row in rows]


def _pause() -> datetime:
    """An instant strictly between two commits (commit timestamps have millisecond resolution)."""
    time.sleep(0.05)
    moment = datetime.now(timezone.utc)
    time.sleep(0.05)
    return moment


@pytest.fixture
def history(tracking_uri, root):
    """A root changed after a first state: updates, a deleted tag, a deleted run, new metrics."""
    client = mlflow.MlflowClient()
    exp = client.create_experiment("tt")
    one = client.create_run(exp, run_name="one").info.run_id
    two = client.create_run(exp, run_name="two").info.run_id
    client.log_batch(one, metrics=[Metric("auc", 0.5, 1, 0)], params=[Param("lr", "0.1")],
                     tags=[RunTag("stage", "draft")])
    client.log_batch(two, metrics=[Metric("auc", 0.6, 1, 0)])
    # Creating a run commits at once, so the runs table's last version would predate the batch
    # above; a run update in the same write batch gives the first state a runs-table version.
    client.update_run(two, status="RUNNING")
    flush(tracking_uri)
    before = _pause()
    version_before = sql.snapshot_versions(str(root))["runs"]
    state_before = _plain(sql.query(WIDE, str(root)).to_pylist())

    client.log_batch(one, metrics=[Metric("auc", 0.9, 2, 1)], tags=[RunTag("stage", "final")])
    client.delete_tag(two, "mlflow.runName")
    client.set_terminated(one, "FINISHED")
    client.delete_run(two)
    client.create_run(exp, run_name="three")
    flush(tracking_uri)
    return str(root), before, version_before, state_before


def test_as_of_timestamp_shows_the_state_before_updates_and_deletes(history):
    root, before, _, state_before = history
    now = _plain(sql.query(WIDE, root).to_pylist())
    assert [r["run_name"] for r in now] == ["one", "three", "two"]
    assert now[0]["status"] == "FINISHED" and now[0]["metrics"] == {"auc": 0.9}
    assert now[0]["tags"]["stage"] == "final"
    assert now[2]["lifecycle_stage"] == "deleted" and now[2]["tags"] is None  # its only tag was deleted

    then = _plain(sql.query(WIDE, root, as_of=before).to_pylist())
    assert then == state_before
    assert [r["run_name"] for r in then] == ["one", "two"]
    assert then[0]["status"] == "RUNNING" and then[0]["metrics"] == {"auc": 0.5}
    assert then[0]["tags"]["stage"] == "draft"
    assert then[1]["lifecycle_stage"] == "active" and then[1]["tags"]["mlflow.runName"] == "two"
    # the same instant as ISO text, and as a naive local time
    assert _plain(sql.query(WIDE, root, as_of=before.isoformat()).to_pylist()) == state_before
    naive_local = before.astimezone().replace(tzinfo=None)
    assert _plain(sql.query(WIDE, root, as_of=naive_local).to_pylist()) == state_before
    assert sql.query("SELECT count(*) AS n FROM metrics", root, as_of=before).column("n")[0].as_py() == 2


def test_as_of_int_is_a_runs_table_version(history):
    root, before, version_before, state_before = history
    assert _plain(sql.query(WIDE, root, as_of=version_before).to_pylist()) == state_before
    assert _plain(sql.query(WIDE, root, as_of=str(version_before)).to_pylist()) == state_before
    versions = sql.snapshot_versions(root, as_of=version_before)
    assert versions["runs"] == version_before
    assert versions == sql.snapshot_versions(root, as_of=before)
    assert sql.snapshot_versions(root)["runs"] > version_before


def test_as_of_before_the_root_existed_is_empty(history):
    root, _, _, _ = history
    assert sql.query("SELECT count(*) AS n FROM runs_wide", root, as_of="2001-01-01T00:00:00Z").to_pylist() == [
        {"n": 0}]


@pytest.mark.spark
def test_spark_as_of_matches_embedded(spark, history):
    root, before, _, state_before = history
    versions = sql.register_views(spark, root, as_of=before)
    assert versions == sql.snapshot_versions(root, as_of=before)
    rows = [r.asDict(recursive=True) for r in spark.sql(WIDE).collect()]
    assert rows == state_before


@pytest.mark.parametrize("value, rule", [
    (-1, "negative"), (True, "not a version"), ("yesterday", "ISO-8601"), (1.5, "type float"),
    ("2026-13-01", "ISO-8601"),
])
def test_bad_as_of_is_rejected(value, rule):
    with pytest.raises(BadInput, match=rule):
        parse_as_of(value)


def test_as_of_version_out_of_range(history):
    root, _, _, _ = history
    with pytest.raises(BadInput, match=r"not a version of the runs table \(versions 0\.\.\d+\)"):
        sql.query("SELECT 1", root, as_of=10_000)
