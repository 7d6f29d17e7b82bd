"""SQL over the tracking tables: Spark SQL views, embedded SQL, time travel, lineage.

``register_views(spark, root)`` registers the views in a Spark session; ``query(sql, root)``
answers the same SQL in-process without Spark. Both take ``as_of=`` (a ``runs`` table version
or a timestamp). Spark is imported only by :func:`register_views`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sparkml_ops.sql.embedded import clear_cache, query
from sparkml_ops.sql.snapshots import AsOf, resolve_location, resolve_versions
from sparkml_ops.sql.views import VIEW_DOCS, VIEW_NAMES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["VIEW_DOCS", "VIEW_NAMES", "clear_cache", "query", "register_views", "snapshot_versions"]


def register_views(spark: SparkSession, root: str | os.PathLike[str] | None = None, *, as_of: AsOf = None,
                   cache: bool = False, use_delta: bool | None = None) -> dict[str, int]:
    """Register the tracking views as temporary views of ``spark``; returns the table versions read.

    Args:
        spark: the session to register the views in (no session is created here).
        root: defaults to mlflow's ``delta:`` tracking URI, then the configured root.
        as_of: a ``runs`` table version or a timestamp: every view shows the root as it was then.
        cache: cache ``latest_metrics`` and ``runs_wide`` (built on first use).
        use_delta: force or forbid ``format("delta")`` (default: when the session has Delta configured).

    Raises:
        NotFound: ``root`` is not a tracking root.
        BadInput: a bad ``as_of``.

    Example: ``register_views(spark); spark.sql("SELECT * FROM runs_wide").show()``.
    """
    from sparkml_ops.sql.spark import register_views as _register

    return _register(spark, root, as_of=as_of, cache=cache, use_delta=use_delta)


def snapshot_versions(root: str | os.PathLike[str] | None = None, *, as_of: AsOf = None) -> dict[str, int]:
    """The Delta version of each table that a query with this ``as_of`` reads (-1: no such table yet).

    Args:
        root: defaults to mlflow's ``delta:`` tracking URI, then the configured root.
        as_of: a ``runs`` table version or a timestamp (default: now).

    Raises:
        NotFound: a root that does not exist.
        BadInput: a bad ``as_of``.

    Example: ``snapshot_versions(as_of=12)["metrics"]``.
    """
    return resolve_versions(resolve_location(root), as_of)
