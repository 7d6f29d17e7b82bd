"""Damaged, foreign and read-only roots: a clear StorageError, and existing data left intact."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType

from sparkml_ops.errors import StorageError
from sparkml_ops.lake import Lake, parse_root
from sparkml_ops.tracking.store import DeltaTrackingStore


def _close(uri: str) -> None:
    lake = Lake.opened(parse_root(uri))
    if lake is not None:
        lake.close()


@pytest.fixture
def filled(root: Path) -> Iterator[tuple[str, str]]:
    """A root holding one committed run (params p0..p4, metric m at steps 0..9, tag t), closed."""
    uri = f"delta:{root}"
    store = DeltaTrackingStore(uri)
    run_id = store.create_run("0", "u", 1_000, [], "filled").info.run_id
    store.log_batch(run_id, [Metric("m", float(s), 10 + s, s) for s in range(10)],
                    [Param(f"p{i}", str(i)) for i in range(5)], [RunTag("t", "x")])
    store.flush()
    _close(uri)
    yield uri, run_id
    _close(uri)


def _assert_intact(uri: str, run_id: str) -> None:
    """A fresh process-level view of the root sees every value of the filled run."""
    _close(uri)
    run = DeltaTrackingStore(uri).get_run(run_id)
    assert run.data.params == {f"p{i}": str(i) for i in range(5)}
    assert run.data.metrics == {"m": 9.0}
    assert run.data.tags["t"] == "x"
    history = DeltaTrackingStore(uri).get_metric_history(run_id, "m")
    assert [m.value for m in history] == [float(s) for s in range(10)]
    _close(uri)


def _data_files(root: Path, table: str) -> list[Path]:
    files = sorted((root / "tables" / table).glob("*.parquet"))
    assert files, f"no data files under {root / 'tables' / table}"
    return files


def test_corrupt_data_file_is_named_and_other_data_stays_readable(filled, root):
    uri, run_id = filled
    victim = _data_files(root, "params")[0]
    original = victim.read_bytes()
    victim.write_bytes(b"this is not parquet" * 20)

    store = DeltaTrackingStore(uri)
    with pytest.raises(StorageError) as err:
        store.get_run(run_id)
    assert victim.name in str(err.value) and "corrupt" in str(err.value)
    with pytest.raises(StorageError):  # a second read fails again, never a silently partial run
        store.get_run(run_id)
    # the other tables still read, and nothing was rewritten or dropped
    assert [m.value for m in store.get_metric_history(run_id, "m")] == [float(s) for s in range(10)]
    assert victim.read_bytes() == b"this is not parquet" * 20

    victim.write_bytes(original)
    _assert_intact(uri, run_id)


def test_missing_data_file_is_named(filled, root):
    uri, run_id = filled
    victim = _data_files(root, "metrics")[0]
    original = victim.read_bytes()
    victim.unlink()

    store = DeltaTrackingStore(uri)
    with pytest.raises(StorageError) as err:
        store.get_metric_history(run_id, "m")
    assert victim.name in str(err.value) and "missing" in str(err.value)
    with pytest.raises(StorageError):
        store.search_runs(["0"], "metrics.m > 1", ViewType.ALL)
    assert store.get_run  # params and tags tables are unaffected:
    params = store.lake.read("params")
    assert sorted(params.column("key").to_pylist()) == [f"p{i}" for i in range(5)]

    victim.write_bytes(original)
    _assert_intact(uri, run_id)


def test_directory_that_is_not_a_store_is_refused_and_untouched(tmp_path):
    foreign = tmp_path / "someone-elses-data"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    uri = f"delta:{foreign}"
    with pytest.raises(StorageError) as err:
        DeltaTrackingStore(uri)
    assert str(foreign) in str(err.value) and "not a sparkml_ops tracking root" in str(err.value)
    mlflow.set_tracking_uri(uri)
    try:
        with pytest.raises(StorageError):
            mlflow.MlflowClient().search_experiments()
    finally:
        mlflow.set_tracking_uri("")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_root_that_is_a_regular_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "a-file"
    path.write_bytes(b"precious")
    with pytest.raises(StorageError) as err:
        DeltaTrackingStore(f"delta:{path}")
    assert str(path) in str(err.value)
    assert path.read_bytes() == b"precious"


def test_corrupt_marker_file_is_a_storage_error(filled, root):
    uri, run_id = filled
    marker = root / "_sparkml_ops.json"
    original = marker.read_bytes()
    marker.write_text("{not json")
    with pytest.raises(StorageError) as err:
        DeltaTrackingStore(uri)
    assert "_sparkml_ops.json" in str(err.value)
    marker.write_bytes(original)
    _assert_intact(uri, run_id)


def _set_read_only(root: Path, read_only: bool) -> None:
    """chmod stops other users; root ignores it, so as root use the immutable attribute (ext4/xfs)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "+i" if read_only else "-i", str(root)], check=True)
    else:
        subprocess.run(["chmod", "-R", "a-w" if read_only else "u+w", str(root)], check=True)


def test_read_only_root_reads_and_refuses_writes_clearly(filled, root):
    uri, run_id = filled
    _set_read_only(root, True)
    try:
        probe = root / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")  # the root really is read-only for this process
        store = DeltaTrackingStore(uri)
        run = store.get_run(run_id)
        assert run.data.params == {f"p{i}": str(i) for i in range(5)}
        assert [r.info.run_id for r in store.search_runs(["0"], "params.p1 = '1'", ViewType.ALL)] == [run_id]
        with pytest.raises(StorageError) as err:
            store.log_param(run_id, Param("new", "v"))
        assert str(root) in str(err.value)
        with pytest.raises(StorageError):
            store.create_experiment("cannot")
        assert store.get_run(run_id).data.params == run.data.params  # nothing half-applied in memory
        assert store.get_experiment_by_name("cannot") is None
    finally:
        _close(uri)
        _set_read_only(root, False)
    _assert_intact(uri, run_id)
    assert DeltaTrackingStore(uri).get_experiment_by_name("cannot") is None
