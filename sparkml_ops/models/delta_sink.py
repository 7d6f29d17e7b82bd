"""Write a Spark DataFrame to a Delta table without Delta's Spark jars: Spark writes, delta-rs commits.

Executors write Parquet files in parallel into a fresh folder inside the table
(``<table>/data/<tag>/``); the driver then reads only their footers and commits them as
``add`` actions in one delta-rs transaction carrying an app transaction ``(app_id,
version)``. The data never passes through the driver, and a commit is all or nothing:

- a crash before the commit leaves unreferenced files (``vacuum`` removes them);
- a retry of an already committed ``(app_id, version)`` is skipped, so a restarted stream
  (same query id, same batch id) or a re-run batch job writes nothing twice.

delta-rs is used only in the driver process (Spark's Python workers are forked from a
daemon that never imports it). Tables must be on a filesystem both Spark and pyarrow can
reach (a local or shared path).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from sparkml_ops.errors import BadInput, StorageError

DATA_DIR = "data"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class CommitResult:
    table: str
    app_id: str
    version: int
    rows: int
    files: int
    committed: bool  # False: this (app_id, version) was already in the table
    table_version: int | None


def _local_table_path(table: str) -> Path:
    text = os.fspath(table)
    if text.startswith("file://"):
        text = text[len("file://"):]
    if "://" in text:
        raise BadInput(f"Delta output {table!r} must be a local or mounted path (Spark writes the files, "
                       "delta-rs commits them)")
    return Path(text).expanduser().resolve()


def committed_version(table: str, app_id: str) -> int | None:
    """The highest version of ``app_id`` recorded in ``table`` (None: none, or no table yet)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    path = _local_table_path(table)
    if not (path / "_delta_log").is_dir():
        return None
    try:
        return DeltaTable(str(path)).transaction_version(app_id)
    except TableNotFoundError:
        return None


def is_committed(table: str, app_id: str, version: int) -> bool:
    done = committed_version(table, app_id)
    return done is not None and done >= version


def write_frame(df, table: str, *, app_id: str, version: int, mode: str = "append") -> CommitResult:
    """Append (or overwrite with) ``df`` to the Delta table at ``table``, exactly once per (app_id, version)."""
    if mode not in ("append", "overwrite"):
        raise BadInput(f"mode {mode!r} must be 'append' or 'overwrite'")
    if not isinstance(version, int) or version < 0:
        raise BadInput(f"version must be a non-negative integer, got {version!r}")
    path = _local_table_path(table)
    if is_committed(str(path), app_id, version):
        return CommitResult(str(path), app_id, version, 0, 0, False, None)
    tag = f"{_SAFE.sub('_', app_id)[:80]}-{version}-{uuid.uuid4().hex[:8]}"
    staged = path / DATA_DIR / tag
    spark = df.sparkSession
    previous = spark.conf.get("spark.sql.parquet.outputTimestampType", None)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # Delta's timestamp encoding
    try:
        df.write.mode("errorifexists").parquet(str(staged))
    finally:
        if previous is not None:
            spark.conf.set("spark.sql.parquet.outputTimestampType", previous)
    return commit_files(str(path), sorted(staged.glob("part-*.parquet")), app_id=app_id, version=version,
                        mode=mode, fallback_schema=_arrow_schema(df))


def _arrow_schema(df):
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema, timezone="UTC")


def commit_files(table: str, files: list[Path], *, app_id: str, version: int, mode: str = "append",
                 fallback_schema=None) -> CommitResult:
    """Commit Parquet ``files`` (already inside ``table``) as one Delta transaction ``(app_id, version)``."""
    from deltalake import CommitProperties, DeltaTable, Transaction
    from deltalake.exceptions import CommitFailedError, DeltaError
    from deltalake.transaction import AddAction

    path = _local_table_path(table)
    actions, rows, schema = [], 0, None
    for file in files:
        meta = pq.read_metadata(file)
        if schema is None:
            schema = meta.schema.to_arrow_schema().remove_metadata()
        stat = file.stat()
        actions.append(AddAction(path=file.relative_to(path).as_posix(), size=stat.st_size, partition_values={},
                                 modification_time=int(stat.st_mtime * 1000), data_change=True,
                                 stats=json.dumps({"numRecords": meta.num_rows})))
        rows += meta.num_rows
    schema = schema if schema is not None else fallback_schema
    if schema is None:
        raise BadInput(f"nothing to commit to {path}: no files and no schema")
    properties = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=version)],
                                  max_commit_retries=50)
    for attempt in range(8):
        try:
            if not (path / "_delta_log").is_dir():
                DeltaTable.create(str(path), schema=schema, mode="ignore")
            dt = DeltaTable(str(path))
            done = dt.transaction_version(app_id)
            if done is not None and done >= version:
                return CommitResult(str(path), app_id, version, 0, 0, False, dt.version())
            dt.create_write_transaction(actions, mode=mode, schema=schema, commit_properties=properties)
            dt = DeltaTable(str(path))
            return CommitResult(str(path), app_id, version, rows, len(actions), True, dt.version())
        except (CommitFailedError, DeltaError, OSError) as exc:
            if attempt == 7:
                raise StorageError(f"cannot commit {len(actions)} file(s) to Delta table {path}: {exc}") from exc
            time.sleep(0.05 * 2**attempt)
    raise StorageError(f"cannot commit to Delta table {path}")  # unreachable
