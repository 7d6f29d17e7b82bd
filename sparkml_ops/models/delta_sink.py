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

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from sparkml_ops.errors import BadInput

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
    from sparkml_ops.lake.delta import transaction_version

    path = _local_table_path(table)
    if not (path / "_delta_log").is_dir():
        return None
    return transaction_version(str(path), app_id)


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
    from sparkml_ops.lake.delta import commit_files as commit_to_table

    path = _local_table_path(table)
    done = commit_to_table(path, files, app_id=app_id, version=version, mode=mode, fallback_schema=fallback_schema)
    return CommitResult(str(path), app_id, version, done.rows, done.files, done.committed, done.table_version)
