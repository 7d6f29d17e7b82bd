"""The lake's one door to Delta tables for the rest of the package.

Only :mod:`sparkml_ops.lake` opens, creates or commits to Delta tables; the SQL snapshots,
dataset lineage, the model jobs' inputs and the streaming Delta sink call these functions,
so retries, error classification and storage options are handled in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction

from sparkml_ops.errors import BadInput
from sparkml_ops.lake.retry import retry


def open_table(uri: str, *, version: int | None = None,
               storage_options: dict[str, str] | None = None) -> DeltaTable | None:
    """The Delta table at ``uri`` (at ``version``), or None when there is none.

    Other delta-rs errors (a corrupt log, a version no longer kept) propagate for the caller
    to name in its own terms.
    """
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options or None)
    except TableNotFoundError:
        return None


def create_table(uri: str, schema: pa.Schema, *, storage_options: dict[str, str] | None = None,
                 name: str | None = None, description: str | None = None,
                 configuration: dict[str, str] | None = None) -> None:
    """Create an empty table at ``uri`` unless one exists; safe when several processes race.

    ``configuration`` may hold our own keys (the layout property) beside Delta's.
    """
    options = storage_options or None

    def create() -> None:
        if not DeltaTable.is_deltatable(uri, options):
            # no commit retries: a creator that loses the race for version 0 must not write its
            # metadata again as version 1 (a second table id); it fails, and ``settled`` sees the winner's
            DeltaTable.create(uri, schema=schema, mode="ignore", name=name, description=description,
                              configuration=configuration, storage_options=options,
                              commit_properties=CommitProperties(max_commit_retries=0),
                              raise_if_key_not_exists=False)  # our layout property is not a Delta key

    def settled(exc: BaseException) -> bool:  # a racing creator won: its table is as good as ours
        try:
            return DeltaTable.is_deltatable(uri, options)
        except (DeltaError, OSError):
            return False

    retry(create, what=f"create table {uri}", settled=settled)


def is_table(uri: str, storage_options: dict[str, str] | None = None) -> bool:
    """True when ``uri`` holds a Delta table (a ``_delta_log``), without reading it."""
    return DeltaTable.is_deltatable(uri, storage_options or None)


def is_table_object(value: object) -> bool:
    """True when ``value`` is a ``deltalake.DeltaTable`` a user handed in."""
    return isinstance(value, DeltaTable)


def data_files(uri: str, storage_options: dict[str, str] | None = None) -> list[str]:
    """The Parquet files of the table's current version (what plain Parquet readers read)."""
    table = open_table(uri, storage_options=storage_options)
    if table is None:
        raise BadInput(f"{uri} is not a Delta table (no _delta_log)")
    return table.file_uris()


def transaction_version(uri: str, app_id: str) -> int | None:
    """The highest version of app transaction ``app_id`` recorded in the table (None: none, or no table)."""
    table = open_table(uri)
    return None if table is None else table.transaction_version(app_id)


@dataclass(frozen=True)
class FilesCommit:
    committed: bool  # False: this (app_id, version) was already in the table
    table_version: int
    rows: int
    files: int


def commit_files(table: Path, files: list[Path], *, app_id: str, version: int, mode: str = "append",
                 fallback_schema: pa.Schema | None = None) -> FilesCommit:
    """Commit Parquet ``files`` (already inside ``table``) as one transaction ``(app_id, version)``.

    Only file footers are read. The table is created on first use with the files' schema.
    A retry after a lost race or a crash finds its transaction and commits nothing twice.
    """
    actions: list[AddAction | RemoveAction] = []
    rows, schema = 0, None
    for file in files:
        meta = pq.read_metadata(file)
        if schema is None:
            schema = meta.schema.to_arrow_schema().remove_metadata()
        stat = file.stat()
        actions.append(AddAction(path=file.relative_to(table).as_posix(), size=stat.st_size, partition_values={},
                                 modification_time=int(stat.st_mtime * 1000), data_change=True,
                                 stats=json.dumps({"numRecords": meta.num_rows})))
        rows += meta.num_rows
    schema = schema if schema is not None else fallback_schema
    if schema is None:
        raise BadInput(f"nothing to commit to {table}: no files and no schema")
    properties = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=version)],
                                  max_commit_retries=50)

    create_table(str(table), schema)

    def commit() -> FilesCommit:
        dt = DeltaTable(str(table))
        done = dt.transaction_version(app_id)
        if done is not None and done >= version:
            return FilesCommit(False, dt.version(), 0, 0)
        dt.create_write_transaction(actions, mode=mode, schema=schema, commit_properties=properties)
        return FilesCommit(True, DeltaTable(str(table)).version(), rows, len(actions))

    result = retry(commit, what=f"commit {len(actions)} file(s) to Delta table {table}", attempts=8, base_s=0.05)
    assert result is not None  # no ``settled``: retry returns the action's result or raises
    return result
