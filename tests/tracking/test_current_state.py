"""Searches over a root's current-state tables (built by ``sparkml-ops maintain``) and their tail.

The answers must be the in-memory path's (itself checked against MLflow's stores in
test_search.py): after a rebuild in a fresh store that never reads the big tables whole, with
rows still uncommitted in this process's writer, and after compaction rewrote the files the
build covered (their rows then come back in the tail, twice).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from sparkml_ops.lake import Lake, current, parse_root
from sparkml_ops.lake.current import manifest_path
from sparkml_ops.lake.delta import data_files
from sparkml_ops.lake.maintenance import build_current_state, compact_if_needed
from sparkml_ops.tracking.store import DeltaTrackingStore

SEARCHES = [
    ("params.lr = '0.1' and metrics.loss < 0.5", ["metrics.acc DESC"]),
    ("tags.team != 'ads'", ["params.lr", "attributes.run_name DESC"]),
    ("metrics.acc > 0.2", None),
    (None, ["metrics.loss"]),
    ("attributes.status = 'FINISHED'", ["attributes.end_time DESC"]),
    ("tags.team IS NULL", ["tags.team"]),
]


def _parses(filter_string: str | None) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    try:
        SearchUtils.parse_search_filter(filter_string)
    except MlflowException:
        return False
    return True


# ``IS NULL`` came after MLflow 3.6, the oldest supported: there the search (MLflow's parser)
# refuses it, as MLflow's own stores do, so only the filters this MLflow parses are compared
SEARCHES = [(f, order) for f, order in SEARCHES if _parses(f)]


def _log_runs(store: DeltaTrackingStore, experiment_id: str, n: int, offset: int = 0) -> list[str]:
    ids = []
    for i in range(offset, offset + n):
        run = store.create_run(experiment_id, "u", 1_000 + 7 * (i % 9), [], f"run-{i}")
        tags = [RunTag("team", ["ads", "search"][i % 2])] if i % 3 else []
        store.log_batch(run.info.run_id, metrics=[Metric("loss", (i % 7) / 7, 1, 0), Metric("acc", (i % 5) / 5, 1, 0)],
                        params=[Param("lr", ["0.1", "0.01"][i % 2])], tags=tags)
        if i % 4 == 0:
            store.update_run_info(run.info.run_id, "FINISHED", 5_000 + i, None)
        ids.append(run.info.run_id)
    return ids


def _answers(store: DeltaTrackingStore, experiment_ids: list[str]) -> list[list[tuple]]:
    """Every search's runs, page by page (pages of 7), with their data."""
    out = []
    for filter_string, order_by in SEARCHES:
        rows, token = [], None
        while True:
            page = store.search_runs(experiment_ids, filter_string, ViewType.ALL, 7, order_by, token)
            rows += [(r.info.run_id, r.info.status, r.info.lifecycle_stage, r.info.end_time,
                      sorted(r.data.params.items()), sorted(r.data.tags.items()), sorted(r.data.metrics.items()))
                     for r in page]
            token = page.token
            if not token:
                break
        out.append(rows)
    return out


def _in_memory_answers(store: DeltaTrackingStore, experiment_ids: list[str]) -> list[list[tuple]]:
    """The same searches on the in-memory path (the manifest set aside meanwhile)."""
    manifest = manifest_path(store.location)
    aside = manifest.with_name("manifest.aside")
    manifest.rename(aside)
    try:
        return _answers(store, experiment_ids)
    finally:
        aside.rename(manifest)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def _close(root: Path) -> None:
    lake = Lake.opened(parse_root(f"delta:{root}"))
    if lake is not None:
        lake.close()


def test_a_fresh_store_searches_without_reading_the_big_tables(root):
    store = DeltaTrackingStore(f"delta:{root}")
    experiment = store.create_experiment("e")
    ids = _log_runs(store, experiment, 30)
    store.delete_run(ids[3])
    store.flush()
    expected = _answers(store, [experiment])
    assert build_current_state(store.location)["runs"] == 30
    _close(root)

    fresh = DeltaTrackingStore(f"delta:{root}")
    assert _answers(fresh, [experiment]) == expected
    for table in ("params", "metrics", "tags", "runs"):  # only the (empty) tails were read
        assert fresh.lake.snapshots[table].version == -1, table
    _close(root)


def test_rows_committed_after_the_build_and_uncommitted_rows_are_seen(root, monkeypatch):
    monkeypatch.setenv("SPARKML_OPS_FLUSH_INTERVAL_MS", "600000")  # nothing commits unless asked
    store = DeltaTrackingStore(f"delta:{root}")
    experiment = store.create_experiment("e")
    ids = _log_runs(store, experiment, 20)
    store.flush()
    build_current_state(store.location)
    ids += _log_runs(store, experiment, 5, offset=20)  # creates commit at once, the rest waits
    store.set_tag(ids[0], RunTag("team", "late"))
    store.delete_tag(ids[1], "team")
    store.log_metric(ids[2], Metric("loss", 0.99, 2, 5))  # a later step: the new latest
    store.log_metric(ids[4], Metric("loss", -1.0, 0, 0))  # an earlier step: not the latest
    store.update_run_info(ids[5], "SCHEDULED", 9_999, None)  # not terminal: no early commit
    store.delete_run(ids[6])
    store.log_param(ids[7], Param("late", "x"))
    assert store.lake.writer().has_pending()
    got = _answers(store, [experiment])
    assert store.lake.writer().has_pending()  # the answers above included uncommitted rows
    assert got == _in_memory_answers(store, [experiment])
    assert any(("team", "late") in run[5] for search in got for run in search)
    _close(root)


def test_compaction_after_the_build_changes_no_answer(root):
    store = DeltaTrackingStore(f"delta:{root}")
    experiment = store.create_experiment("e")
    ids = _log_runs(store, experiment, 15)
    store.flush()
    build_current_state(store.location)
    for i, run_id in enumerate(ids[:5]):
        store.log_metric(run_id, Metric("loss", 0.5 + i / 100, 3, 1))
        store.flush()  # small files, for compaction to fold with the build's
    _log_runs(store, experiment, 5, offset=15)
    store.flush()
    before = _answers(store, [experiment])
    for table in ("runs", "params", "metrics", "tags"):
        assert compact_if_needed(store.location, table, file_count=2, min_files=1)
    after = _answers(store, [experiment])
    assert after == before == _in_memory_answers(store, [experiment])
    _close(root)


def test_background_compaction_keeps_the_files_the_build_covers(root, monkeypatch):
    monkeypatch.setenv("SPARKML_OPS_COMPACT_MIN_FILES", "2")  # the writer compacts after every flush
    monkeypatch.setenv("SPARKML_OPS_FLUSH_INTERVAL_MS", "20")
    monkeypatch.setattr(current, "MIN_COMPACTION_TARGET", 1)  # test files are far below 1 MiB
    store = DeltaTrackingStore(f"delta:{root}")
    experiment = store.create_experiment("e")
    ids = _log_runs(store, experiment, 12)
    history = [Metric("curve", i / 3000, 1_000 + i, i) for i in range(3000)]  # a build file well above a flush's
    for start in range(0, len(history), 1000):
        store.log_batch(ids[0], metrics=history[start:start + 1000], params=[], tags=[])
    store.flush()
    assert compact_if_needed(store.location, "metrics", file_count=2, min_files=1)  # as maintain does first
    build_current_state(store.location)
    covered = current.load(store.location).covered["metrics"]
    writer = store.lake.writer()
    for i, run_id in enumerate(ids):
        store.log_metric(run_id, Metric("loss", 0.3 + i / 100, 4, 2))
        deadline = time.monotonic() + 60
        while writer.has_pending() and time.monotonic() < deadline:  # the background thread commits,
            time.sleep(0.01)  # one small file each, then compacts it with the others, never with the build's
        store.lake.commit_now()  # waits for that compaction (it holds the flush lock)
    files = set(data_files(store.location.table_uri("metrics")))
    assert covered <= files and len(files - covered) < len(ids) // 2  # the new small files were compacted
    _, tail = store.lake.read_tail("metrics", covered)
    assert tail.num_rows == len(ids)  # only what was logged since the build
    assert _answers(store, [experiment]) == _in_memory_answers(store, [experiment])
    _close(root)


def test_a_fresh_store_reads_and_logs_to_runs_without_reading_the_big_tables(root):
    store = DeltaTrackingStore(f"delta:{root}")
    experiment = store.create_experiment("e")
    ids = _log_runs(store, experiment, 10)
    store.log_metric(ids[1], Metric("loss", 0.7, 5, 9))
    store.flush()
    expected = {run_id: store.get_run(run_id) for run_id in ids}
    build_current_state(store.location)
    _close(root)

    fresh = DeltaTrackingStore(f"delta:{root}")
    for run_id, want in expected.items():
        got = fresh.get_run(run_id)
        assert (dict(got.info), got.data.params, got.data.tags, repr(got.data.metrics)) == (
            dict(want.info), want.data.params, want.data.tags, repr(want.data.metrics))
    fresh.log_param(ids[2], Param("lr", expected[ids[2]].data.params["lr"]))  # the same value again: fine
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        fresh.log_param(ids[2], Param("lr", "another"))
    fresh.set_tag(ids[3], RunTag("team", "new"))
    fresh.log_metric(ids[3], Metric("loss", 0.01, 9, 9))
    with pytest.raises(MlflowException, match="not found"):
        fresh.get_run("f" * 32)
    fresh.flush()
    run = fresh.get_run(ids[3])
    assert run.data.tags["team"] == "new" and run.data.metrics["loss"] == 0.01
    for table in ("params", "metrics", "tags", "runs"):
        assert fresh.lake.snapshots[table].version == -1, table
    _close(root)
