"""The three Delta tables of the blob store, and their creation.

They are kept out of :data:`sparkml_ops.lake.schemas.TABLES` on purpose: everything that walks
``TABLES`` (snapshots that load whole tables into memory, ``maintain``'s generic compaction,
``sparkml-ops info``) must never load or rewrite chunk bytes. The blob store creates them on
first use and maintains them itself (:mod:`sparkml_ops.lake.blobs.gc`).
"""

from __future__ import annotations

import pyarrow as pa

from sparkml_ops.lake.delta import create_table
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import LAYOUT_PROPERTY, LAYOUT_VERSION, TableSpec

_str = pa.string()
_i64 = pa.int64()

CHUNKS = TableSpec(
    "blob_chunks",
    pa.schema([("hash", _str), ("size", _i64), ("data", pa.binary()), ("created_ms", _i64),
               ("upload_id", _str)]),
    ("hash",),
    "content-addressed chunks: sha256 hex -> bytes; a large chunk is one Parquet row group",
)
FILES = TableSpec(
    "blob_files",
    pa.schema([("namespace", _str), ("path", _str), ("kind", _str), ("size", _i64), ("sha256", _str),
               ("chunks", pa.list_(_str)), ("upload_id", _str), ("created_ms", _i64),
               ("deleted", pa.bool_()), ("seq", _i64)]),
    ("namespace", "path"),
    "blob manifest: one row per file version, empty directory or deletion; latest seq wins",
)
MARKS = TableSpec(
    "blob_marks",
    pa.schema([("hash", _str), ("cutoff_ms", _i64), ("marked_ms", _i64), ("state", _str),
               ("gc_id", _str), ("seq", _i64)]),
    ("hash",),
    "gc marks: state 'marked' dooms copies created before cutoff_ms; 'cleared' or 'swept' ends it",
)

BLOB_TABLES: dict[str, TableSpec] = {t.name: t for t in (CHUNKS, FILES, MARKS)}

_CONFIGURATION = {
    "delta.checkpointInterval": "50",
    "delta.appendOnly": "false",
    "delta.logRetentionDuration": "interval 30 days",
    LAYOUT_PROPERTY: str(LAYOUT_VERSION),
}


def storage_options(location: RootLocation) -> dict[str, str] | None:
    return location.storage_options or None


def ensure_tables(location: RootLocation) -> None:
    """Create every missing blob table (idempotent, safe under concurrent creators)."""
    for spec in BLOB_TABLES.values():
        create_table(location.table_uri(spec.name), spec.schema, storage_options=location.storage_options,
                     name=spec.name, description=spec.description, configuration=_CONFIGURATION)
