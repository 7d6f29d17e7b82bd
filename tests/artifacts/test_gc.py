"""GC reclaims unreferenced chunks and never one that a live or in-progress upload relies on."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from sparkml_ops.errors import BadInput
from sparkml_ops.lake.blobs import BlobStore, GcReport, Source, gc
from sparkml_ops.lake.blobs.gc import mark, sweep
from tests.artifacts import workers
from tests.artifacts.helpers import random_bytes, write

NS = "artifacts"
WAIT = 5.0
_spawn = multiprocessing.get_context("spawn")


def _check_all(store: BlobStore, tmp_path: Path) -> int:
    """Download every live file (each chunk and file is verified); the number checked."""
    entries = [e for e in store.walk(NS, "") if not e.is_dir]
    store.download(NS, [(e, str(tmp_path / "check" / e.path)) for e in entries])
    for e in entries:
        assert hashlib.sha256((tmp_path / "check" / e.path).read_bytes()).hexdigest() == e.sha256
    return len(entries)


def test_gc_reclaims_deleted_and_keeps_referenced(blobs, src, location, tmp_path):
    shared = random_bytes(64 * 1024 * 3, seed=31)
    only_a = random_bytes(64 * 1024 * 2, seed=32)
    blobs.put(NS, [Source("a/shared.bin", str(write(src / "s", shared))),
                   Source("a/own.bin", str(write(src / "o", only_a)))])
    blobs.put(NS, [Source("b/shared.bin", str(src / "s"))])
    blobs.delete(NS, "a")
    before = blobs.usage()
    report = gc(location, wait_s=WAIT)
    after = blobs.usage()
    assert report.marked == 2 and report.swept_chunks == 2 and report.reclaimed_bytes == len(only_a)
    assert after["chunk_bytes"] == len(shared) and after["physical_bytes"] < before["physical_bytes"]
    assert report.waited_s >= WAIT - 0.5
    assert _check_all(blobs, tmp_path) == 1
    nothing = gc(location, wait_s=WAIT)  # nothing left to do: no marks, no wait
    assert nothing.marked == 0 and nothing.waited_s == 0


def test_gc_wait_must_cover_the_upload_recheck(location):
    with pytest.raises(BadInput, match="at least"):
        gc(location, wait_s=0.5)


def test_upload_after_mark_writes_a_fresh_copy_that_survives_the_sweep(blobs, src, tmp_path):
    data = random_bytes(64 * 1024 * 2, seed=33)
    path = write(src / "c.bin", data)
    blobs.put(NS, [Source("old/c.bin", str(path))])
    blobs.delete(NS, "old")
    report = GcReport()
    mark(blobs, min_age_s=0, wait_s=WAIT, report=report)
    assert report.marked == 2
    blobs.put(NS, [Source("new/c.bin", str(path))])  # dedups onto marked chunks: must re-copy them
    hashes = set(blobs.entry(NS, "new/c.bin").chunks)
    assert blobs.index.rows_for(hashes).num_rows == 4  # the old (doomed) copies plus fresh ones
    time.sleep(WAIT)
    sweep(blobs, wait_s=WAIT, report=report)
    assert report.swept_chunks == 2  # the old copies only
    assert _check_all(blobs, tmp_path) == 1


def test_upload_in_progress_when_gc_marks_keeps_its_chunks(blobs, src, tmp_path):
    """The upload decides to reuse chunks, gc marks them, then the upload publishes."""
    data = random_bytes(64 * 1024 * 3, seed=34)
    blobs.put(NS, [Source("old/c.bin", str(write(src / "c.bin", data)))])
    blobs.delete(NS, "old")

    consumed, gate = threading.Event(), threading.Event()

    class Gated(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            chunk = self._data.read(n)
            if not chunk:
                consumed.set()
                gate.wait(60)
            return chunk

    errors: list[BaseException] = []

    def upload() -> None:
        try:
            blobs.put(NS, [Source("new/c.bin", stream=Gated())])  # a stream: cannot be re-read
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    assert consumed.wait(60)
    report = GcReport()
    mark(blobs, min_age_s=0, wait_s=WAIT, report=report)
    assert report.marked == 3
    gate.set()
    thread.join(60)
    assert not errors
    time.sleep(WAIT)
    sweep(blobs, wait_s=WAIT, report=report)
    assert report.swept_chunks == 3 and report.cleared == 0
    assert _check_all(blobs, tmp_path) == 1


@pytest.mark.slow
def test_gc_with_a_concurrent_upload_process(location, src, tmp_path):
    contents = [random_bytes(256 * 1024 * 6, seed=35), random_bytes(256 * 1024 * 5, seed=36)]
    paths = [str(write(src / f"loop{i}.bin", data)) for i, data in enumerate(contents)]
    store = BlobStore(location, chunk_size=256 * 1024)
    done = tmp_path / "done"
    child = _spawn.Process(target=workers.upload_delete_loop, args=(location.uri, paths, 10.0, str(done)))
    child.start()
    reports = []
    deadline = time.monotonic() + 120
    while child.is_alive() and time.monotonic() < deadline:
        reports.append(gc(location, wait_s=WAIT))
    child.join(60)
    assert child.exitcode == 0
    reports.append(gc(location, wait_s=WAIT))
    last, source = done.read_text().splitlines()
    assert [e.path for e in store.walk(NS, "")] == [last]
    dest = tmp_path / "final.bin"
    store.read_to(NS, last, str(dest))  # every chunk present and verified
    assert dest.read_bytes() == Path(source).read_bytes()
    assert sum(r.marked for r in reports) > 0  # gc really ran against the uploads
    assert set(store.index.table().column("hash").to_pylist()) == set(store.entry(NS, last).chunks)
