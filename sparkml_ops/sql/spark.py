"""The tracking views as Spark temporary views (this is the only module of sql/ that imports Spark).

Without Delta's Spark jars (the default here) each raw table is the snapshot's exact Parquet
file list from delta-rs — exact and distributed, since the tables have no deletion vectors or
column mapping. A session with Delta configured (a user's cluster) reads ``format("delta")``
at the same versions instead. Tables with no files become empty DataFrames of their schema.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from sparkml_ops.errors import NotSupported
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TABLES
from sparkml_ops.sql.snapshots import AsOf, resolve_location, resolve_versions, table_read
from sparkml_ops.sql.views import RAW_PREFIX, SPARK, public_views

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

CACHED_VIEWS = ("latest_metrics", "runs_wide")


def register_views(spark: SparkSession, root: str | os.PathLike[str] | None = None, *, as_of: AsOf = None,
                   cache: bool = False, use_delta: bool | None = None) -> dict[str, int]:
    """Register the raw tables (``sparkml_raw_*``) and the public views in ``spark``; returns the
    Delta version read per table.

    ``cache=True`` caches ``latest_metrics`` and ``runs_wide`` (built on first use), so repeated
    queries skip the scan of the metric history. ``use_delta`` forces or forbids
    ``format("delta")``; by default it is used when the session has Delta configured.
    """
    location = resolve_location(root)
    versions = resolve_versions(location, as_of)
    delta = delta_configured(spark) if use_delta is None else use_delta
    for view in CACHED_VIEWS:  # a cached view would keep serving the old snapshot
        spark.sql(f"UNCACHE TABLE IF EXISTS {view}")
    for name in TABLES:
        _read_on(spark, location, name, versions[name], delta).createOrReplaceTempView(RAW_PREFIX + name)
    for view, sql in public_views(SPARK, inline_state=True).items():
        spark.sql(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql}")
    if cache:
        for view in CACHED_VIEWS:
            spark.catalog.cacheTable(view)
    return versions


def delta_configured(spark: SparkSession) -> bool:
    """True when the session can read ``format("delta")`` (Delta's session extension is set)."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    catalog = spark.conf.get("spark.sql.catalog.spark_catalog", "") or ""
    return "DeltaSparkSessionExtension" in extensions or "DeltaCatalog" in catalog


def spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of a table spec, every column nullable (Spark reads Parquet as nullable anyway)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(pa.schema([field.with_nullable(True) for field in schema]))


def spark_path(uri: str) -> str:
    """A delta-rs file URI as Spark's Hadoop filesystems name it."""
    if "://" not in uri:
        return Path(uri).as_uri()
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://"):]
    return uri


def _read_on(spark: SparkSession, location: RootLocation, table: str, version: int, delta: bool) -> DataFrame:
    """:func:`_read`, with the one error a session without S3 support gives turned into advice."""
    try:
        return _read(spark, location, table, version, delta)
    except Exception as exc:
        if location.is_local or "S3AFileSystem not found" not in str(exc):
            raise
        raise NotSupported(
            f"Spark cannot read the object-store root {location.uri}: this session has no s3a:// filesystem "
            "(the hadoop-aws jars). Start Spark with --packages org.apache.hadoop:hadoop-aws:<its Hadoop version> "
            "and the fs.s3a.* endpoint and credential settings, or query the views without Spark: "
            "sparkml_ops.sql.query(...) or `sparkml-ops sql`"
        ) from None


def _read(spark: SparkSession, location: RootLocation, table: str, version: int, delta: bool) -> DataFrame:
    schema = spark_schema(TABLES[table].schema)
    if version < 0:
        return spark.createDataFrame([], schema)
    if delta:
        return (spark.read.format("delta").option("versionAsOf", version)
                .load(spark_path(location.table_uri(table))).select(*schema.fieldNames()))
    files = table_read(location, table, version).files
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*[spark_path(f) for f in files])
