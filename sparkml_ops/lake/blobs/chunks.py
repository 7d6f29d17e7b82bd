"""Chunk files: streaming Parquet writer, hash index and reader of the ``blob_chunks`` table.

Layout of a chunk file: columns ``hash, size, data, created_ms, upload_id``; a chunk of at
least :data:`ROW_GROUP_BYTES` is a row group of its own, small chunks share row groups of
about that size. So reading one chunk reads at most one row group, and writing keeps at most
one row group in memory. Files roll over at :data:`FILE_BYTES`; GC rewrites at file
granularity.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction, Transaction

from sparkml_ops.errors import CommitConflict, StorageError
from sparkml_ops.lake.blobs.incremental import CommitHandle, DeltaFiles
from sparkml_ops.lake.blobs.tables import CHUNKS
from sparkml_ops.lake.fileio import TableFiles
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import is_relisted, retry

ROW_GROUP_BYTES = 4 * 1024 * 1024
FILE_BYTES = 128 * 1024 * 1024
APP_PREFIX = "sparkml_ops-blobs-"

_INDEX_SCHEMA = pa.schema([("hash", pa.string()), ("size", pa.int64()), ("created_ms", pa.int64()),
                           ("file", pa.string()), ("rg", pa.int32()), ("row", pa.int32())])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Location:
    file: str
    rg: int
    row: int


class ChunkWriter:
    """Streams chunks into new Parquet files of the chunk table (not yet committed)."""

    def __init__(self, files: TableFiles, upload_id: str) -> None:
        self._files = files
        self.upload_id = upload_id
        self.created_ms = now_ms()
        self.written: set[str] = set()
        self.bytes_written = 0
        self._pending: list[tuple[str, Any, int, str]] = []
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: Any = None
        self._file: dict[str, Any] = {}
        self._done: list[AddAction] = []
        self._paths: list[str] = []

    def add(self, digest: str, data: Any, *, created_ms: int | None = None, upload_id: str | None = None) -> None:
        """Queue one chunk; ``data`` is bytes, a memoryview or a pyarrow Buffer (not copied)."""
        if digest in self.written:
            return
        self.written.add(digest)
        row = (digest, data, created_ms or self.created_ms, upload_id or self.upload_id)
        size = len(data) if not isinstance(data, pa.Buffer) else data.size
        if size >= ROW_GROUP_BYTES:
            self._flush_pending()
            self._write_rows([row])
        else:
            self._pending.append(row)
            self._pending_bytes += size
            if self._pending_bytes >= ROW_GROUP_BYTES:
                self._flush_pending()

    def close(self) -> list[AddAction]:
        """Finish every file; the add actions to commit."""
        self._flush_pending()
        self._finish_file()
        return self._done

    def abort(self) -> None:
        """Drop the files written so far (best effort: uncommitted files are invisible anyway)."""
        try:
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
        except Exception:  # noqa: BLE001 - the upload already failed; keep its error
            pass
        for path in self._paths:
            self._files.delete(path)

    # -- internals ---------------------------------------------------------------------

    def _flush_pending(self) -> None:
        if self._pending:
            rows, self._pending, self._pending_bytes = self._pending, [], 0
            self._write_rows(rows)

    def _write_rows(self, rows: list[tuple[str, Any, int, str]]) -> None:
        if self._writer is None:
            self._open_file()
        if len(rows) == 1:
            data = _single_binary(rows[0][1])
        else:
            data = pa.array([bytes(r[1]) if not isinstance(r[1], bytes) else r[1] for r in rows], pa.binary())
        sizes = [_size(r[1]) for r in rows]
        batch = pa.record_batch(
            [pa.array([r[0] for r in rows], pa.string()), pa.array(sizes, pa.int64()), data,
             pa.array([r[2] for r in rows], pa.int64()), pa.array([r[3] for r in rows], pa.string())],
            schema=CHUNKS.schema,
        )
        assert self._writer is not None
        self._writer.write_batch(batch, row_group_size=len(rows))
        f = self._file
        f["rows"] += len(rows)
        f["bytes"] += sum(sizes)
        hashes = [r[0] for r in rows]
        created = [r[2] for r in rows]
        f["min_hash"] = min([f["min_hash"], *hashes]) if f["min_hash"] else min(hashes)
        f["max_hash"] = max([f["max_hash"], *hashes]) if f["max_hash"] else max(hashes)
        f["min_created"] = min(f["min_created"], *created)
        f["max_created"] = max(f["max_created"], *created)
        self.bytes_written += sum(sizes)
        if f["bytes"] >= FILE_BYTES:
            self._finish_file()

    def _open_file(self) -> None:
        path = f"part-{uuid.uuid4().hex}.parquet"
        self._paths.append(path)
        self._sink = self._files.open_output(path)
        self._writer = pq.ParquetWriter(
            self._sink, CHUNKS.schema, compression="none", use_dictionary=False,
            write_statistics=["hash", "size", "created_ms"], data_page_size=ROW_GROUP_BYTES, data_page_version="1.0",
        )
        self._file = {"path": path, "rows": 0, "bytes": 0, "min_hash": "", "max_hash": "",
                      "min_created": 2**62, "max_created": 0}

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        self._writer = self._sink = None
        f = self._file
        stats = {
            "numRecords": f["rows"],
            "minValues": {"hash": f["min_hash"], "created_ms": f["min_created"]},
            "maxValues": {"hash": f["max_hash"], "created_ms": f["max_created"]},
            "nullCount": {"hash": 0, "size": 0, "data": 0, "created_ms": 0, "upload_id": 0},
        }
        self._done.append(AddAction(f["path"], self._files.size(f["path"]), {}, now_ms(), True, json.dumps(stats)))


def _size(data: Any) -> int:
    return data.size if isinstance(data, pa.Buffer) else len(data)


def _single_binary(data: Any) -> pa.Array:
    """A one-value binary array over ``data`` without copying it."""
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int32).tobytes())
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, buffer])


def commit_actions(location: RootLocation, adds: list[AddAction], removes: list[RemoveAction] | None = None,
                   *, app_id: str | None = None, handle: CommitHandle | None = None) -> None:
    """Commit add/remove actions to the chunk table as one transaction.

    ``app_id`` makes a retried commit idempotent. A conflict with a concurrent remove of the
    same files raises :class:`CommitConflict` (re-plan and retry); blind appends never conflict.
    """
    actions: list[Any] = [*adds, *(removes or [])]
    if not actions:
        return
    handle = handle or CommitHandle(location, CHUNKS.name)
    txn = [Transaction(app_id=APP_PREFIX + app_id, version=1)] if app_id else None
    properties = CommitProperties(app_transactions=txn, max_commit_retries=50)
    app = APP_PREFIX + app_id if app_id else None

    def commit() -> None:
        with handle.lock:
            table = handle.get()
            if app is not None and (table.transaction_version(app) or 0) >= 1:
                return  # an earlier attempt landed
            table.create_write_transaction(actions, "append", CHUNKS.schema, commit_properties=properties)

    def settled(exc: BaseException) -> bool:
        handle.drop()
        if removes and isinstance(exc, CommitFailedError):  # delta-rs's own retries lost to a remove
            raise CommitConflict(f"chunk files were changed concurrently; re-plan: {exc}") from exc
        return False

    retry(commit, what=f"commit chunk files to {handle.uri}", settled=settled)


class ChunkIndex:
    """Where every committed chunk lives: ``hash -> (file, row group, row)``, refreshed incrementally.

    Only the small columns of each chunk file are read, once per file.
    """

    def __init__(self, location: RootLocation, files: TableFiles) -> None:
        self.location = location
        self.files = files
        self.generation = 0
        self._delta = DeltaFiles(location, CHUNKS.name)
        self._per_file: dict[str, pa.Table] = {}
        self._table: pa.Table | None = None
        self._hashes: set[str] | None = None
        self._lock = threading.RLock()

    def refresh(self) -> None:
        def attempt() -> None:
            _, removed = self._delta.refresh()
            for path in removed:
                self._per_file.pop(path, None)
            new: dict[str, pa.Table] = {}
            try:
                for path in self._delta.sizes:
                    if path not in self._per_file:
                        new[path] = self._read_file_index(path)
            except FileNotFoundError:  # rewritten by gc after we listed it: list again
                if removed:
                    self._table, self._hashes = None, None
                    self.generation += 1
                self._delta.force_check()
                raise
            self._per_file.update(new)
            if new or removed:
                self._table = None
                self.generation += 1
                if removed:
                    self._hashes = None
                elif self._hashes is not None:
                    for table in new.values():
                        self._hashes.update(table.column("hash").to_pylist())

        with self._lock:
            retry(attempt, what=f"read chunk table {self._delta.uri} (it keeps changing under the reader; retry)",
                  attempts=6, transient=is_relisted, base_s=0.01, cap_s=0.1)

    def _read_file_index(self, path: str) -> pa.Table:
        try:
            source = self.files.open_input(path)
            parquet = pq.ParquetFile(source)
            small = parquet.read(columns=["hash", "size", "created_ms"])
            counts = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
        except FileNotFoundError:
            raise
        except (pa.ArrowInvalid, OSError) as exc:
            raise StorageError(f"chunk file {self.files.describe(path)} is corrupt: {exc}") from exc
        rg = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        row = np.concatenate([np.arange(n, dtype=np.int32) for n in counts]) if counts else np.array([], np.int32)
        return pa.table([small.column("hash"), small.column("size"), small.column("created_ms"),
                         pa.array([path] * small.num_rows, pa.string()), pa.array(rg), pa.array(row)],
                        schema=_INDEX_SCHEMA)

    def table(self) -> pa.Table:
        with self._lock:
            if self._table is None:
                parts = list(self._per_file.values())
                self._table = pa.concat_tables(parts) if parts else _INDEX_SCHEMA.empty_table()
            return self._table

    def hash_set(self) -> set[str]:
        with self._lock:
            if self._hashes is None:
                self._hashes = set(self.table().column("hash").to_pylist())
            return self._hashes

    def file_sizes(self) -> dict[str, int]:
        with self._lock:
            return dict(self._delta.sizes)

    def rows_for(self, hashes: list[str] | set[str]) -> pa.Table:
        table = self.table()
        if not hashes:
            return table.slice(0, 0)
        return table.filter(pc.is_in(table.column("hash"), value_set=pa.array(list(hashes), pa.string())))

    def locate(self, hashes: list[str] | set[str]) -> dict[str, Location]:
        """The newest copy of each hash that has one."""
        rows = self.rows_for(hashes)
        found: dict[str, tuple[int, Location]] = {}
        for h, created, file, rg, row in zip(*(rows.column(c).to_pylist() for c in
                                               ("hash", "created_ms", "file", "rg", "row")), strict=True):
            if h not in found or created > found[h][0]:
                found[h] = (created, Location(file, rg, row))
        return {h: loc for h, (_, loc) in found.items()}

    def newest_created(self, hashes: list[str] | set[str]) -> dict[str, int]:
        rows = self.rows_for(hashes)
        if rows.num_rows == 0:
            return {}
        grouped = rows.group_by("hash").aggregate([("created_ms", "max")])
        return dict(zip(grouped.column("hash").to_pylist(), grouped.column("created_ms_max").to_pylist(),
                        strict=True))


class ChunkReader:
    """Reads chunk bytes by location; keeps the last multi-row row group and a few open files."""

    def __init__(self, files: TableFiles) -> None:
        self.files = files
        self._open: OrderedDict[str, pq.ParquetFile] = OrderedDict()
        self._group_key: tuple[str, int] | None = None
        self._group: pa.Array | None = None

    def read(self, loc: Location) -> pa.Buffer:
        """The bytes of one chunk (zero-copy view); ``FileNotFoundError`` if its file is gone."""
        if self._group_key == (loc.file, loc.rg) and self._group is not None:
            column = self._group
        else:
            parquet = self._parquet(loc.file)
            try:
                column = parquet.read_row_group(loc.rg, columns=["data"]).column(0).combine_chunks()
            except (pa.ArrowInvalid, OSError) as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                raise StorageError(f"chunk file {self.files.describe(loc.file)} is corrupt: {exc}") from exc
            if len(column) > 1:
                self._group_key, self._group = (loc.file, loc.rg), column
            else:
                self._group_key = self._group = None
        if loc.row >= len(column):
            raise StorageError(f"chunk file {self.files.describe(loc.file)} lacks row {loc.row} of group {loc.rg}")
        value = column[loc.row]
        if not value.is_valid:
            raise StorageError(f"chunk file {self.files.describe(loc.file)} has a null chunk at {loc}")
        return value.as_buffer()

    def forget(self, file: str) -> None:
        self._open.pop(file, None)
        if self._group_key and self._group_key[0] == file:
            self._group_key = self._group = None

    def _parquet(self, file: str) -> pq.ParquetFile:
        parquet = self._open.get(file)
        if parquet is None:
            try:
                parquet = pq.ParquetFile(self.files.open_input(file))
            except FileNotFoundError:
                raise
            except (pa.ArrowInvalid, OSError) as exc:
                raise StorageError(f"chunk file {self.files.describe(file)} is corrupt: {exc}") from exc
            self._open[file] = parquet
            while len(self._open) > 8:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(file)
        return parquet
