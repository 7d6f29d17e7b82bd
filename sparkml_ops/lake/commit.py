"""Idempotent Delta appends: one commit per table per flush, safe to retry and to replay.

Each commit carries a Delta app transaction ``(writer_id, lsn)``. Before retrying after an
error, or when replaying a dead writer's log, the table's recorded transaction version for
that writer says which records are already in: nothing is applied twice.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from sparkml_ops.errors import StorageError
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TABLES, TableSpec

_log = logging.getLogger(__name__)

APP_ID_PREFIX = "sparkml_ops-"
MAX_ATTEMPTS = 12


def app_id(writer_id: str) -> str:
    return APP_ID_PREFIX + writer_id


class TableCommitter:
    """Writes Arrow batches to the tables of one root."""

    def __init__(self, location: RootLocation, *, checkpoint_interval: int = 50) -> None:
        self.location = location
        self._checkpoint_interval = checkpoint_interval
        self._tables: dict[str, DeltaTable] = {}
        self._tables_lock = threading.Lock()

    def create_tables(self) -> None:
        """Create every missing table (empty, with its schema and layout version)."""
        for table_spec in TABLES.values():
            uri = self.location.table_uri(table_spec.name)
            for attempt in range(MAX_ATTEMPTS):
                try:
                    if DeltaTable.is_deltatable(uri, self.location.storage_options or None):
                        break
                    DeltaTable.create(
                        uri,
                        schema=table_spec.schema,
                        mode="ignore",
                        name=table_spec.name,
                        description=table_spec.description,
                        configuration=self._configuration(),
                        storage_options=self.location.storage_options or None,
                    )
                    break
                except (CommitFailedError, DeltaError, OSError) as exc:
                    if attempt == MAX_ATTEMPTS - 1:
                        raise StorageError(f"cannot create table {uri}: {exc}") from exc
                    _backoff(attempt)

    def committed_version(self, table: str, writer_id: str) -> int:
        """Highest log sequence number of ``writer_id`` already committed to ``table``."""
        try:
            dt = DeltaTable(self.location.table_uri(table),
                            storage_options=self.location.storage_options or None)
        except TableNotFoundError:
            return 0
        return dt.transaction_version(app_id(writer_id)) or 0

    def append(self, table_spec: TableSpec, data: pa.Table, writer_id: str, lsn: int) -> None:
        """Append ``data`` exactly once under transaction ``(writer_id, lsn)``."""
        uri = self.location.table_uri(table_spec.name)
        properties = CommitProperties(
            app_transactions=[Transaction(app_id=app_id(writer_id), version=lsn)],
            max_commit_retries=50,
        )
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self._tables_lock:
                    write_deltalake(
                        self._open_table(table_spec.name) or uri,
                        data,
                        mode="append",
                        commit_properties=properties,
                        storage_options=self.location.storage_options or None,
                    )
                return
            except (CommitFailedError, DeltaError, OSError) as exc:
                self._tables.pop(table_spec.name, None)  # the next attempt starts from a fresh handle
                if self._already_committed(table_spec.name, writer_id, lsn):
                    return
                if attempt == MAX_ATTEMPTS - 1 or not _transient(exc):
                    raise StorageError(f"cannot commit to table {uri}: {exc}") from exc
                _log.debug("commit to %s conflicted (%s); retrying", uri, exc)
                _backoff(attempt)

    def _open_table(self, name: str) -> DeltaTable | None:
        """A kept handle on a table, caught up with its log (opening one replays the whole log)."""
        table = self._tables.get(name)
        if table is not None:
            if self.location.may_have_commit_after(self.location.table_uri(name), table.version()):
                table.update_incremental()  # lists the whole log: skipped when nothing can be new
            return table
        try:
            table = DeltaTable(self.location.table_uri(name), storage_options=self.location.storage_options or None)
        except TableNotFoundError:
            return None  # write_deltalake creates it, as it always did
        self._tables[name] = table
        return table

    def _already_committed(self, table: str, writer_id: str, lsn: int) -> bool:
        try:
            return self.committed_version(table, writer_id) >= lsn
        except (DeltaError, OSError):
            return False

    def _configuration(self) -> dict[str, str]:
        return {
            "delta.checkpointInterval": str(self._checkpoint_interval),
            "delta.appendOnly": "false",
            "delta.logRetentionDuration": "interval 30 days",
        }


def _transient(exc: Exception) -> bool:
    if isinstance(exc, CommitFailedError):
        return True
    text = str(exc).lower()
    return any(word in text for word in ("conflict", "already exists", "version", "temporar"))


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.005 * 2**attempt) * (0.5 + random.random()))
