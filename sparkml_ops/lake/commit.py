"""Idempotent Delta appends: one commit per table per flush, safe to retry and to replay.

Each commit carries a Delta app transaction ``(writer_id, lsn)``. Before retrying after an
error, or when replaying a dead writer's log, the table's recorded transaction version for
that writer says which records are already in: nothing is applied twice.
"""

from __future__ import annotations

import logging
import threading

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from sparkml_ops.lake.delta import create_table
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import retry
from sparkml_ops.lake.schemas import LAYOUT_PROPERTY, LAYOUT_VERSION, TABLES, TableSpec

_log = logging.getLogger(__name__)

APP_ID_PREFIX = "sparkml_ops-"
TXN_METADATA_KEY = "sparkml_ops.txn"  # commitInfo metadata "<app id>:<lsn>": readable from DeltaTable.history()


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
            create_table(self.location.table_uri(table_spec.name), table_spec.schema,
                         storage_options=self.location.storage_options, name=table_spec.name,
                         description=table_spec.description, configuration=self._configuration())

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
            custom_metadata={TXN_METADATA_KEY: f"{app_id(writer_id)}:{lsn}"},
            max_commit_retries=50,
        )

        def write() -> None:
            with self._tables_lock:
                write_deltalake(
                    self._open_table(table_spec.name) or uri,
                    data,
                    mode="append",
                    commit_properties=properties,
                    storage_options=self.location.storage_options or None,
                )

        def settled(exc: BaseException) -> bool:
            self._tables.pop(table_spec.name, None)  # the next attempt starts from a fresh handle
            return self._already_committed(table_spec.name, writer_id, lsn)

        retry(write, what=f"commit to table {uri}", settled=settled)

    def file_count(self, table: str) -> int:
        """Data files of ``table``'s current version (from the writer's own handle: no data read)."""
        with self._tables_lock:
            handle = self._open_table(table)
            return 0 if handle is None else len(handle.file_uris())

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
            LAYOUT_PROPERTY: str(LAYOUT_VERSION),
        }
