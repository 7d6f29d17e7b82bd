"""GC marks: the first half of mark-and-sweep, shared by gc and by every upload's final check.

A mark ``(hash, cutoff_ms)`` in state ``marked`` says: a later sweep may delete the copies
of this chunk created before ``cutoff_ms`` if nothing references it by then. An upload that
relies on a chunk therefore needs a copy created at or after every pending cutoff, and
writes a fresh copy when it has none (see :mod:`sparkml_ops.lake.blobs.gc` for the proof).
"""

from __future__ import annotations

import threading
import uuid

import pyarrow as pa
import pyarrow.compute as pc

from sparkml_ops.lake.blobs.manifest import latest
from sparkml_ops.lake.blobs.tables import MARKS
from sparkml_ops.lake.commit import TableCommitter
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.snapshot import TableSnapshot

MARKED = "marked"
CLEARED = "cleared"  # found referenced at sweep time: nothing deleted
SWEPT = "swept"  # old copies deleted


class Marks:
    def __init__(self, location: RootLocation) -> None:
        self.location = location
        self._snapshot = TableSnapshot(location, MARKS)
        self._committer = TableCommitter(location)
        self._pending: pa.Table | None = None
        self._generation = -1
        self._lock = threading.RLock()

    def refresh(self) -> None:
        with self._lock:
            self._snapshot.refresh()

    def pending(self) -> pa.Table:
        """Latest mark of each hash, only those still in state ``marked``."""
        with self._lock:
            if self._pending is None or self._generation != self._snapshot.generation:
                rows = latest(self._snapshot.table(), ["hash"])
                self._pending = rows.filter(pc.equal(rows.column("state"), MARKED))
                self._generation = self._snapshot.generation
            return self._pending

    def pending_cutoffs(self, hashes: set[str]) -> dict[str, int]:
        table = self.pending()
        if not hashes or table.num_rows == 0:
            return {}
        hit = table.filter(pc.is_in(table.column("hash"), value_set=pa.array(list(hashes), pa.string())))
        return dict(zip(hit.column("hash").to_pylist(), hit.column("cutoff_ms").to_pylist(), strict=True))

    def append(self, hashes: list[str], *, state: str, cutoff_ms: list[int] | int, marked_ms: list[int] | int,
               gc_id: str, seq: int) -> None:
        if not hashes:
            return
        n = len(hashes)
        cutoffs = cutoff_ms if isinstance(cutoff_ms, list) else [cutoff_ms] * n
        stamps = marked_ms if isinstance(marked_ms, list) else [marked_ms] * n
        table = pa.table({"hash": pa.array(hashes, pa.string()), "cutoff_ms": pa.array(cutoffs, pa.int64()),
                          "marked_ms": pa.array(stamps, pa.int64()), "state": pa.array([state] * n, pa.string()),
                          "gc_id": pa.array([gc_id] * n, pa.string()), "seq": pa.array([seq] * n, pa.int64())},
                         schema=MARKS.schema)
        self._committer.append(MARKS, table, f"blobgc-{gc_id}-{state}-{uuid.uuid4().hex[:8]}", 1)
        self.refresh()
