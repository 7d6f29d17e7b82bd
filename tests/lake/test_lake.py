"""The Delta layer on its own: WAL, idempotent commits, snapshots, maintenance, layout."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from sparkml_ops.errors import StorageError
from sparkml_ops.lake import LAYOUT_VERSION, TABLES, Lake, parse_root
from sparkml_ops.lake.maintenance import maintain
from sparkml_ops.lake.wal import Record, WriteAheadLog, read_records
from sparkml_ops.lake.writer import columns_to_table


def _metric(run_id: str, step: int) -> dict:
    return {"run_id": [run_id], "key": ["loss"], "value": [float(step)], "timestamp": [step], "step": [step]}


@pytest.fixture
def lake(root):
    lake = Lake.open(parse_root(str(root)))
    yield lake
    lake.close()


def test_every_table_is_created_with_its_layout_version(lake, root):
    marker = json.loads((root / "_sparkml_ops.json").read_text())
    assert marker["layout_version"] == LAYOUT_VERSION
    for name, spec in TABLES.items():
        dt = DeltaTable(str(root / "tables" / name))
        assert f"layout {LAYOUT_VERSION}" in dt.metadata().description
        assert dt.schema().to_arrow().names == spec.schema.names


def test_reads_see_pending_rows_once_before_and_after_commit(lake):
    for step in range(5):
        lake.append("metrics", _metric("r", step))
    assert lake.read("metrics").column("step").to_pylist() == [0, 1, 2, 3, 4]
    lake.flush()
    assert sorted(lake.read("metrics").column("step").to_pylist()) == [0, 1, 2, 3, 4]
    lake.append("metrics", _metric("r", 5))
    assert sorted(lake.read("metrics").column("step").to_pylist()) == [0, 1, 2, 3, 4, 5]


def test_commit_with_same_transaction_is_applied_once(lake, root):
    data = columns_to_table("metrics", [_metric("x", 1)])
    lake.committer.append(TABLES["metrics"], data, "writer-a", 7)
    lake.committer.append(TABLES["metrics"], data, "writer-a", 7)  # a retry of the same batch
    rows = DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table()
    assert rows.num_rows == 2  # delta-rs appends; replay logic must consult the version first
    assert lake.committer.committed_version("metrics", "writer-a") == 7


def test_replay_skips_records_already_committed(lake, root, tmp_path):
    wal_root = root / "_wal"
    wal = WriteAheadLog(wal_root / "dead-writer")
    for lsn in (1, 2, 3):
        wal.append(Record(lsn, "metrics", _metric("d", lsn)))
    # the dead writer had committed lsn 1..2 before dying
    lake.committer.append(TABLES["metrics"], columns_to_table("metrics", [_metric("d", 1), _metric("d", 2)]),
                          "dead-writer", 2)
    wal.rotate()
    import os

    os.close(wal._lock_fd)  # the writer dies: its lock goes away
    assert lake.recover() == 1
    steps = sorted(DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table().column("step").to_pylist())
    assert steps == [1, 2, 3]
    assert not (wal_root / "dead-writer").exists()


def test_torn_last_wal_line_is_ignored(tmp_path):
    wal = WriteAheadLog(tmp_path / "w")
    wal.append(Record(1, "metrics", _metric("a", 1)))
    wal.rotate()
    segment = next((tmp_path / "w").glob("seg-*"))
    with segment.open("ab") as handle:
        handle.write(b'[2,"metrics",{"run_id":["a"')  # killed mid-write
    records = read_records(tmp_path / "w")
    assert [r.lsn for r in records] == [1]


def test_maintain_compacts_and_keeps_rows(lake, root):
    for step in range(20):
        lake.append("metrics", _metric("m", step))
        lake.flush()
    before = DeltaTable(str(root / "tables" / "metrics"))
    assert len(before.file_uris()) >= 20
    reports = {r.table: r for r in maintain(lake.location, vacuum=True, retention_hours=0)}
    after = DeltaTable(str(root / "tables" / "metrics"))
    assert len(after.file_uris()) == 1
    assert reports["metrics"].files_before >= 20 and reports["metrics"].files_after == 1
    assert sorted(after.to_pyarrow_table().column("step").to_pylist()) == list(range(20))
    assert sorted(lake.read("metrics").column("step").to_pylist()) == list(range(20))


def test_background_compaction_bounds_file_count(root, monkeypatch):
    monkeypatch.setenv("SPARKML_OPS_COMPACT_MIN_FILES", "8")
    monkeypatch.setenv("SPARKML_OPS_FLUSH_INTERVAL_MS", "20")
    lake = Lake.open(parse_root(str(root)))
    try:
        import time

        for step in range(40):
            lake.append("metrics", _metric("c", step))
            time.sleep(0.03)
        deadline = time.time() + 20
        while time.time() < deadline and lake.writer().has_pending():
            time.sleep(0.05)
        lake.flush()
        files = len(DeltaTable(str(root / "tables" / "metrics")).file_uris())
        assert files < 16
        assert sorted(lake.read("metrics").column("step").to_pylist()) == list(range(40))
    finally:
        lake.close()


def test_directory_that_is_not_a_root_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("my files")
    with pytest.raises(StorageError, match="not a sparkml_ops tracking root"):
        Lake(parse_root(str(tmp_path)))
    assert (tmp_path / "notes.txt").read_text() == "my files"


def test_newer_layout_is_refused(lake, root):
    lake.close()
    marker = root / "_sparkml_ops.json"
    marker.write_text(json.dumps({"layout_version": LAYOUT_VERSION + 1}))
    with pytest.raises(StorageError, match="layout version"):
        Lake(parse_root(str(root)))


def test_columns_to_table_fills_missing_columns():
    table = columns_to_table("metrics", [_metric("a", 1)])
    assert table.schema == TABLES["metrics"].schema
    assert table.column("model_id").to_pylist() == [None]
    assert isinstance(table, pa.Table)


def test_deleted_table_is_an_error_not_an_empty_table(lake, root):
    import shutil

    lake.append("metrics", _metric("keep", 1))
    lake.close()
    shutil.rmtree(root / "tables" / "tags")
    with pytest.raises(StorageError, match="damaged"):
        Lake(parse_root(str(root)))
    assert not (root / "tables" / "tags").exists()  # nothing recreated behind the user's back
    assert DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table().num_rows == 1


def test_tables_added_by_a_newer_release_are_created(lake, root):
    import shutil

    lake.close()
    marker = root / "_sparkml_ops.json"
    content = json.loads(marker.read_text())
    content["tables"].remove("outputs")  # as if written by a release without that table
    marker.write_text(json.dumps(content))
    shutil.rmtree(root / "tables" / "outputs")
    reopened = Lake(parse_root(str(root)))
    assert DeltaTable.is_deltatable(str(root / "tables" / "outputs"))
    assert "outputs" in json.loads(marker.read_text())["tables"]
    reopened.close()
