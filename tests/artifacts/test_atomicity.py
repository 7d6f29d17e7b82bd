"""Atomic visibility: a reader never sees part of an upload, and a killed upload leaves nothing visible."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from sparkml_ops.lake.blobs import BlobStore, gc
from tests.artifacts import workers
from tests.artifacts.helpers import chunk_files, random_bytes, write

NS = "artifacts"
_spawn = multiprocessing.get_context("spawn")


def _wait_for(path: Path, process, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.is_alive(), f"child exited early with {process.exitcode}"
        assert time.monotonic() < deadline, f"child never created {path}"
        time.sleep(0.05)


def _kill(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert process.exitcode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_during_directory_upload_leaves_nothing_visible(location, tmp_path):
    started = tmp_path / "started"
    child = _spawn.Process(target=workers.slow_directory_upload, args=(location.uri, str(started), 8, 4_000_000))
    child.start()
    _wait_for(started, child)
    deadline = time.monotonic() + 120
    while not chunk_files(location):  # wait until chunks reach an (uncommitted) chunk file
        assert child.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    _kill(child)
    store = BlobStore(location)
    assert store.walk(NS, "") == []  # no file of the directory is visible
    assert len(chunk_files(location)) >= 1  # its chunks are on disk: uncommitted, or committed but unreferenced
    report = gc(location, wait_s=5, orphan_hours=0)
    assert report.orphan_files_removed + report.swept_chunks >= 1
    usage = store.usage()
    assert (usage["chunks"], usage["physical_bytes"], usage["files"]) == (0, 0, 0)


@pytest.mark.slow
def test_sigkill_between_chunk_commit_and_manifest_commit(location, tmp_path):
    data = random_bytes(1_000_000, seed=21)
    source = write(tmp_path / "late.bin", data)
    ready = tmp_path / "ready"
    child = _spawn.Process(target=workers.upload_then_hang_before_manifest,
                           args=(location.uri, str(ready), str(source)))
    child.start()
    _wait_for(ready, child)
    _kill(child)
    store = BlobStore(location)
    assert store.entry(NS, "crash/late.bin") is None
    assert store.usage()["chunk_bytes"] == len(data)  # chunks committed, nothing references them
    report = gc(location, wait_s=5)
    assert report.swept_chunks == 4 and store.usage()["chunk_bytes"] == 0


@pytest.mark.slow
def test_reader_polling_during_large_upload_never_sees_partial_files(location, tmp_path):
    data = random_bytes(64 * 1024 * 1024, seed=22)
    digest = hashlib.sha256(data).hexdigest()
    big = write(tmp_path / "big.bin", data)
    small = 50
    store = BlobStore(location)
    child = _spawn.Process(target=workers.big_directory_upload, args=(location.uri, str(big), small))
    child.start()
    seen_absent = seen_present = 0
    while True:
        alive = child.is_alive()
        entries = {e.path: e for e in store.walk(NS, "poll")}
        if not entries:
            seen_absent += 1
        else:
            # all of the directory or nothing, and the big file whole and correct
            assert len(entries) == small + 1
            assert entries["poll/big.bin"].size == len(data) and entries["poll/big.bin"].sha256 == digest
            dest = tmp_path / f"read{seen_present}.bin"
            store.read_to(NS, "poll/big.bin", str(dest))
            assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
            dest.unlink()
            seen_present += 1
        if not alive:
            break
        time.sleep(0.02)
    child.join()
    assert child.exitcode == 0
    assert seen_absent >= 3, "the reader should have polled while the upload ran"
    assert seen_present >= 1
