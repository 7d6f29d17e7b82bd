"""Cached, incrementally refreshed Arrow snapshots of the tables.

A refresh reads only the Delta log entries since the last one and only the Parquet files
added since; files removed by compaction drop out.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from sparkml_ops.errors import StorageError
from sparkml_ops.lake.fileio import TableFiles
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TableSpec

FULL_CHECK_S = 30.0
REMOTE_READERS = 16  # data files of an object-store table read concurrently on a refresh


class View(NamedTuple):
    """One published version of a table: its rows, a generation that changes with them, and
    the highest log sequence number this process's writer has committed into those rows."""

    rows: pa.Table | None
    generation: int
    own_lsn: int


class TableSnapshot:
    """The committed rows of one table (but those of the files in ``exclude``); ``generation``
    changes whenever they do."""

    def __init__(self, location: RootLocation, table_spec: TableSpec, *,
                 exclude: frozenset[str] = frozenset()) -> None:
        self.location = location
        self.exclude = exclude  # data files left out (a current-state build holds their rows)
        self.spec = table_spec
        self.uri = location.table_uri(table_spec.name)
        self._dt: DeltaTable | None = None
        self._files: dict[str, pa.Table] = {}
        self._view = View(None, 0, 0)  # replaced whole, so a reader never pairs parts of two versions
        self._own_app_id: str | None = None
        self._checked_at = 0.0
        self._complete = True  # False after a failed load: table() refuses, the next refresh retries
        self._lock = threading.Lock()
        self._remote: TableFiles | None = None  # object-store roots: reads with the root's storage options

    @property
    def generation(self) -> int:
        return self._view.generation

    def view(self) -> View:
        """The last published version (no I/O)."""
        return self._view

    def track_writer(self, app_id: str) -> None:
        """Report in each view how far this process's writer (Delta app id) has committed."""
        self._own_app_id = app_id

    @property
    def file_count(self) -> int:
        return len(self._files)

    @property
    def version(self) -> int:
        return self._dt.version() if self._dt is not None else -1

    def refresh(self) -> bool:
        """Catch up with the Delta log; True when the visible rows changed."""
        with self._lock:
            try:
                if self._dt is None:
                    self._dt = DeltaTable(self.uri, storage_options=self.location.storage_options or None)
                    self._checked_at = time.monotonic()
                elif not self._complete:  # the last load failed: retry it, never serve part of a version
                    return self._load_files()
                else:
                    before = self._dt.version()
                    if not self._may_have_moved(before):
                        return False
                    self._dt.update_incremental()
                    self._checked_at = time.monotonic()
                    if self._dt.version() == before:
                        return False
                return self._load_files()
            except TableNotFoundError as exc:
                raise StorageError(
                    f"table {self.uri} is missing or is not a Delta table; "
                    "restore it from a backup (the other tables are intact)"
                ) from exc
            except DeltaError as exc:
                raise StorageError(f"table {self.uri} cannot be read: {exc}") from exc

    def refresh_if_open(self) -> bool:
        """:meth:`refresh` a snapshot someone has read; one nobody read stays unloaded (a writer's
        commits never load a big table its process does not read)."""
        with self._lock:
            opened = self._dt is not None
        return self.refresh() if opened else False

    def _may_have_moved(self, version: int) -> bool:
        """Cheap enough for every read; a full check still runs every ``FULL_CHECK_S`` in case log
        cleanup removed the next commit's file."""
        if time.monotonic() - self._checked_at > FULL_CHECK_S:
            return True
        return self.location.may_have_commit_after(self.uri, version)

    def table(self) -> pa.Table:
        return self.schema_table(self._view)

    def schema_table(self, view: View) -> pa.Table:
        """The rows of ``view`` (an empty table of the schema when there are none)."""
        if not self._complete:
            raise StorageError(f"table {self.uri} could not be fully read at its last refresh; refusing a partial view")
        return _empty(self.spec.schema) if view.rows is None else view.rows

    def _load_files(self) -> bool:
        """Read the files new in the current version, then publish the new rows at once.

        Readers do not take the lock: until the publication they keep seeing the previous
        version whole (a refresh after compaction reads for a while), never a mix.
        """
        assert self._dt is not None
        files: dict[str, pa.Table] = {}
        try:
            uris = [uri for uri in self._dt.file_uris() if uri not in self.exclude]
            new = [uri for uri in uris if uri not in self._files]
            if self.location.is_local or len(new) < 2:
                fresh = {uri: self._read_file(uri) for uri in new}
            else:  # an object store answers each file after a round trip: wait for several at once
                with ThreadPoolExecutor(min(REMOTE_READERS, len(new))) as pool:
                    fresh = dict(zip(new, pool.map(self._read_file, new), strict=True))
            for uri in uris:
                files[uri] = self._files[uri] if uri in self._files else fresh[uri]
        except Exception:
            self._complete = False
            raise
        changed = files.keys() != self._files.keys()
        self._files = files
        view = self._view
        rows = view.rows
        if changed or rows is None:
            parts = [t for t in files.values() if t.num_rows]
            rows = pa.concat_tables(parts, promote_options="permissive") if parts else None
        own_lsn = (self._dt.transaction_version(self._own_app_id) or 0) if self._own_app_id else 0
        self._view = View(rows, view.generation + 1 if changed else view.generation, own_lsn)
        self._complete = True
        return changed

    def _read_file(self, uri: str) -> pa.Table:
        try:
            if self.location.is_local:
                table = pq.read_table(uri)
            else:  # pyarrow's own S3 client knows neither the root's storage options nor its endpoint
                if self._remote is None:
                    self._remote = TableFiles(self.location, self.spec.name)
                with self._remote.open_input(uri[len(self.uri.rstrip("/")) + 1:]) as source:
                    table = pq.read_table(source)
            return _conform(table, self.spec.schema)
        except FileNotFoundError as exc:
            raise StorageError(
                f"table {self.uri} references data file {uri}, which is missing; "
                "the table is damaged (restore the file from a backup, or roll the table back with "
                "deltalake's DeltaTable.restore to a version before the loss)"
            ) from exc
        except pa.ArrowInvalid as exc:
            raise StorageError(f"data file {uri} of table {self.uri} is corrupt: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"data file {uri} of table {self.uri} cannot be read: {exc}") from exc


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Same column order and types everywhere, whatever wrote the file."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            if column.type != field.type:
                column = column.cast(field.type)
        else:
            column = pa.nulls(table.num_rows, field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=schema.names)


def _empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
