"""Child-process bodies for the artifact tests (run with the ``spawn`` start method)."""

from __future__ import annotations

import io
import time
from pathlib import Path

NS = "artifacts"


class SlowStream(io.RawIOBase):
    """``data`` served in small reads with a pause each, touching ``started`` after the first read."""

    def __init__(self, data: bytes, pause_s: float, started: Path | None = None) -> None:
        self._data = io.BytesIO(data)
        self._pause = pause_s
        self._started = started

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._started is not None:
            self._started.touch()
        time.sleep(self._pause)
        return self._data.read(min(n, 256 * 1024) if n and n > 0 else 256 * 1024)


def _store(root: str, chunk_size: int):
    from sparkml_ops.lake import parse_root
    from sparkml_ops.lake.blobs import BlobStore

    return BlobStore(parse_root(root), chunk_size=chunk_size)


def slow_directory_upload(root: str, started: str, files: int, size: int) -> None:
    """Upload ``files`` slow streams as one directory; the parent kills us midway."""
    from sparkml_ops.lake.blobs import Source

    store = _store(root, 256 * 1024)
    sources = [Source(f"crash/d/f{i}.bin", stream=SlowStream(bytes([i]) * size, 0.05, Path(started)))
               for i in range(files)]
    store.put(NS, sources)


def upload_then_hang_before_manifest(root: str, ready: str, data_file: str) -> None:
    """Commit the chunks of an upload, then stop right before the manifest commit (killed there)."""
    from sparkml_ops.lake.blobs import Source, store

    def hang(self, *args, **kwargs):
        Path(ready).touch()
        time.sleep(600)

    store.BlobStore._publish = hang
    _store(root, 256 * 1024).put(NS, [Source("crash/late.bin", data_file)])


def big_directory_upload(root: str, big_file: str, small: int) -> None:
    """One directory upload: a large file plus ``small`` small files."""
    from sparkml_ops.lake.blobs import Source

    sources = [Source("poll/big.bin", big_file)]
    sources += [Source(f"poll/small/{i}.txt", stream=io.BytesIO(f"file {i}".encode())) for i in range(small)]
    _store(root, 1024 * 1024).put(NS, sources)


def upload_delete_loop(root: str, data_files: list[str], seconds: float, done: str) -> None:
    """Upload the files in turn under new paths and delete the previous path, for ``seconds``.

    Each content is unreferenced between rounds, so a concurrent gc marks it, and the next
    round dedups onto chunks that gc has marked (or already swept).
    """
    from sparkml_ops.lake.blobs import Source

    store = _store(root, 256 * 1024)
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        store.put(NS, [Source(f"loop/{i}.bin", data_files[i % len(data_files)])])
        if i:
            store.delete(NS, f"loop/{i - 1}.bin")
        i += 1
        time.sleep(0.2)
    Path(done).write_text(f"loop/{i - 1}.bin\n{data_files[(i - 1) % len(data_files)]}")
