"""The blob manifest: which path holds which chunks, as the latest row per (namespace, path).

An upload of one file or of a whole directory is ONE append to ``blob_files``, made after
its chunks are committed, so readers see all of it or nothing. Deletions are tombstones.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import Transaction

from sparkml_ops.errors import StorageError
from sparkml_ops.lake.blobs.chunks import APP_PREFIX
from sparkml_ops.lake.blobs.incremental import CommitHandle, DeltaFiles
from sparkml_ops.lake.blobs.tables import FILES
from sparkml_ops.lake.fileio import TableFiles
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import is_relisted, retry

KIND_FILE = "file"
KIND_DIR = "dir"  # an explicitly logged empty directory


def latest(table: pa.Table, keys: list[str]) -> pa.Table:
    """The row with the highest ``seq`` for each key (vectorised)."""
    if table.num_rows <= 1:
        return table
    order = [(k, "ascending") for k in keys] + [("seq", "descending")]
    table = table.take(pc.sort_indices(table, sort_keys=order))
    n = table.num_rows
    first = None
    for key in keys:
        column = table.column(key)
        differs = pc.not_equal(column.slice(1), column.slice(0, n - 1))
        differs = pc.fill_null(differs, True)
        first = differs if first is None else pc.or_(first, differs)
    mask = pa.concat_arrays([pa.array([True]), first.combine_chunks()])  # type: ignore[union-attr]
    return table.filter(mask)


class Manifest:
    """Latest row of every path, folded in incrementally as manifest files are added."""

    def __init__(self, location: RootLocation) -> None:
        self.location = location
        self._delta = DeltaFiles(location, FILES.name)
        self._files = TableFiles(location, FILES.name)
        self._commit = CommitHandle(location, FILES.name)
        self._latest: pa.Table = _with_key(FILES.schema.empty_table())
        self._live: pa.Table | None = None
        self.generation = 0
        self._lock = threading.RLock()
        self._last_seq = 0

    def refresh(self) -> None:
        def attempt() -> None:
            added, removed = self._delta.refresh()
            try:
                if removed:  # compaction rewrote files: rebuild from the current ones
                    rows = self._read(list(self._delta.sizes))
                    self._latest = _with_key(latest(rows, ["namespace", "path"]))
                elif added:
                    self._fold(self._read(added))
            except FileNotFoundError:  # rewritten after we listed it: start over from the current files
                self._delta.reset()
                self._latest = _with_key(FILES.schema.empty_table())
                raise
            if added or removed:
                self._live = None
                self.generation += 1

        with self._lock:
            retry(attempt, what=f"read blob manifest {self._delta.uri} (it keeps changing under the reader; retry)",
                  attempts=6, transient=is_relisted, base_s=0.01, cap_s=0.1)

    def _read(self, paths: list[str]) -> pa.Table:
        parts = []
        for path in paths:
            try:
                parts.append(_conform(pq.read_table(self._files.open_input(path))))
            except FileNotFoundError:
                raise
            except (pa.ArrowInvalid, OSError) as exc:
                raise StorageError(f"manifest file {self._files.describe(path)} is corrupt: {exc}") from exc
        return pa.concat_tables(parts) if parts else FILES.schema.empty_table()

    def _fold(self, rows: pa.Table) -> None:
        """Merge new rows into the latest state: O(state) vectorised, no sort of the whole state."""
        new = _with_key(latest(rows, ["namespace", "path"]))
        if self._latest.num_rows == 0:
            self._latest = new
            return
        hit = pc.is_in(self._latest.column("key"), value_set=new.column("key"))
        contested = pa.concat_tables([self._latest.filter(hit), new])
        winners = _with_key(latest(contested.drop_columns(["key"]), ["namespace", "path"]))
        self._latest = pa.concat_tables([self._latest.filter(pc.invert(hit)), winners]).combine_chunks()

    def live(self) -> pa.Table:
        """Latest non-deleted row of every path (all namespaces)."""
        with self._lock:
            if self._live is None:
                rows = self._latest.drop_columns(["key"])
                self._live = rows.filter(pc.invert(pc.fill_null(rows.column("deleted"), False)))
            return self._live

    def in_namespace(self, namespace: str) -> pa.Table:
        live = self.live()
        return live.filter(pc.equal(live.column("namespace"), namespace))

    def under(self, namespace: str, path: str) -> pa.Table:
        """Live rows at ``path`` or below it (``path`` '' means the whole namespace)."""
        rows = self.in_namespace(namespace)
        if not path:
            return rows
        paths = rows.column("path")
        return rows.filter(pc.or_(pc.equal(paths, path), pc.starts_with(paths, path + "/")))

    def entry(self, namespace: str, path: str) -> dict[str, Any] | None:
        rows = self.in_namespace(namespace)
        hit = rows.filter(pc.equal(rows.column("path"), path))
        return hit.to_pylist()[0] if hit.num_rows else None

    def referenced(self) -> pa.Array:
        """Every chunk hash a live entry references (unique)."""
        chunks = self.live().column("chunks")
        flat = pc.list_flatten(chunks)
        return pc.unique(flat.combine_chunks() if isinstance(flat, pa.ChunkedArray) else flat)

    def next_seq(self) -> int:
        with self._lock:
            self._last_seq = max(self._last_seq + 1, time.time_ns())
            return self._last_seq

    def commit(self, rows: list[dict[str, Any]], txn_id: str, *, retry: bool = False) -> None:
        """Append ``rows`` exactly once (transaction ``txn_id``); raises ``CommitFailedError``.

        ``retry`` says an earlier attempt may have landed: look for its transaction first.
        """
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=FILES.schema)
        app_id = APP_PREFIX + txn_id
        with self._commit.lock:
            try:
                handle = self._commit.get()
                if retry and (handle.transaction_version(app_id) or 0) >= 1:
                    return
                write_deltalake(handle, table, mode="append", commit_properties=CommitProperties(
                    app_transactions=[Transaction(app_id=app_id, version=1)], max_commit_retries=20))
            except (DeltaError, OSError) as exc:
                self._commit.drop()
                if isinstance(exc, CommitFailedError):
                    raise
                raise StorageError(f"cannot commit to blob manifest {self._commit.uri}: {exc}") from exc


def _with_key(table: pa.Table) -> pa.Table:
    key = pc.binary_join_element_wise(table.column("namespace"), table.column("path"), "\x00")
    if "key" in table.column_names:
        table = table.drop_columns(["key"])
    return table.append_column("key", key)


def _conform(table: pa.Table) -> pa.Table:
    """Our schema's column order and types, whatever engine wrote the file."""
    columns = []
    for field in FILES.schema:
        column = table.column(field.name) if field.name in table.column_names else pa.nulls(table.num_rows, field.type)
        columns.append(column.cast(field.type) if column.type != field.type else column)
    return pa.Table.from_arrays(columns, schema=FILES.schema)
