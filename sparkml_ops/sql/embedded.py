"""Embedded SQL over the tracking views, without Spark (DuckDB in-process).

Why DuckDB: for what analysts write here its SQL reads like Spark SQL — map access
``params['lr']`` (NULL for a missing key), window functions, ``/`` as real division — and with
Spark's NULL ordering configured (NULLS FIRST ascending, LAST descending) the same query text
returns the same rows in both engines. A few Spark function names it lacks are added as macros.

How: for each root (and each ``as_of``) the process keeps a catalog with two in-memory
databases. An internal *loader* (never sees user SQL) reads the snapshot's Parquet files and
computes the state tables with the shared view SQL; they are copied into a *query* database
that cannot touch files (``enable_external_access=false``, configuration locked) and only ever
runs single user SELECT statements. Refreshes are incremental: when a table only grew, just its
new files are read, merged into the state for the keys they carry, and ``runs_wide`` (a
materialised table there) is rebuilt for the runs they touch. The metric history is scanned
lazily through a pyarrow dataset.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Literal

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake.exceptions import DeltaError

from sparkml_ops.errors import BadInput, SparkmlOpsError, StorageError
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TABLES
from sparkml_ops.sql.guard import check_read_only, one_line

if TYPE_CHECKING:
    from deltalake import DeltaTable
from sparkml_ops.sql.snapshots import (
    MISSING,
    AsOf,
    open_table,
    parse_as_of,
    resolve_location,
    resolve_versions,
    table_read,
)
from sparkml_ops.sql.views import (
    DUCKDB,
    HISTORY_TABLES,
    RAW_PREFIX,
    STATE_PREFIX,
    VIEW_NAMES,
    WIDE_INPUTS,
    public_views,
    runs_wide_sql,
    state_sql,
)

_QUERY_DB_CONFIG: dict[str, str | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "default_null_order": "nulls_first_on_asc_last_on_desc",  # Spark's NULL ordering
}
# Spark SQL names DuckDB lacks, with Spark's semantics (NULLs skipped, [] for none).
_SPARK_MACROS = (
    "CREATE MACRO collect_list(x) AS coalesce(list(x) FILTER (WHERE x IS NOT NULL), [])",
    "CREATE MACRO collect_set(x) AS coalesce(list(DISTINCT x) FILTER (WHERE x IS NOT NULL), [])",
    "CREATE MACRO map_from_arrays(k, v) AS map(k, v)",
)
_MAX_PINNED_CATALOGS = 2


def query(sql: str, root: str | os.PathLike[str] | None = None, *, as_of: AsOf = None,
          output: Literal["arrow", "pandas"] = "arrow"):
    """Run one read-only SELECT over the tracking views of ``root``; an Arrow table or pandas frame.

    Args:
        sql: one ``SELECT`` (or ``WITH … SELECT``) over the views (``runs``, ``params``, ``metrics``,
            ``latest_metrics``, ``runs_wide`` …; see ``VIEW_DOCS``).
        root: defaults to mlflow's ``delta:`` tracking URI, then the configured root.
        as_of: a ``runs`` table version or a timestamp (see :mod:`sparkml_ops.sql.snapshots`).
        output: ``"arrow"`` (a ``pyarrow.Table``) or ``"pandas"``.

    Raises:
        BadInput: a statement that writes, an unknown ``output`` or a bad ``as_of``.
        NotFound: ``root`` is not a tracking root.

    Example: ``query("SELECT run_id, value FROM latest_metrics WHERE key = 'rmse' ORDER BY value LIMIT 5")``.
    """
    if output not in ("arrow", "pandas"):
        raise BadInput(f"output={output!r} is not supported; use 'arrow' or 'pandas'")
    check_read_only(sql)
    location = resolve_location(root)
    if as_of is None:
        _flush_own_writes(location)
    catalog = _catalog(location, as_of)
    with catalog.lock:
        catalog.refresh()
        result = catalog.run(sql)
    return result.to_pandas() if output == "pandas" else result


def clear_cache() -> None:
    """Drop every cached catalog: frees the memory of roots no longer queried (the next query reloads).

    Raises:
        Nothing: it only drops caches; no table is touched.

    Example: ``sparkml_ops.sql.clear_cache()`` after a batch of queries in a long-lived notebook.
    """
    with _REGISTRY_LOCK:
        _CATALOGS.clear()


class _Catalog:
    """The views of one root at one point (latest, or pinned versions), loaded into DuckDB."""

    def __init__(self, location: RootLocation, pinned: dict[str, int] | None) -> None:
        self.location = location
        self.pinned = pinned
        self.lock = threading.Lock()
        self.versions: dict[str, int] = {}
        self._tables: dict[str, DeltaTable | None] = {}
        self._files: dict[str, frozenset[str]] = {}
        self._loader = duckdb.connect(":memory:")
        self._db = duckdb.connect(":memory:", config=dict(_QUERY_DB_CONFIG))
        for macro in _SPARK_MACROS:
            self._db.execute(macro)
        self._ready = False

    # -- loading -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring every table to its current (or pinned) version; cheap when nothing changed.

        A table that only grew (no data file removed) gets just its new files' rows merged
        into its state, and ``runs_wide`` is rebuilt for the runs they touch; anything else
        (first load, compaction) reloads the table and rebuilds ``runs_wide`` whole.
        """
        reloaded: set[str] = set()
        touched: set[str] = set()
        for name in TABLES:
            version = self._version(name)
            if name in self._files and self.versions.get(name) == version:
                continue
            runs = self._load(name, version)
            if runs is None:
                reloaded.add(name)
            else:
                touched |= runs
            self.versions[name] = version
        if not self._ready:
            views = public_views(DUCKDB)
            for view, sql in views.items():
                if view != "runs_wide":
                    self._db.execute(f"CREATE VIEW {view} AS {sql}")
            self._db.execute(f"CREATE TABLE runs_wide AS {views['runs_wide']}")
            self._db.execute("SET lock_configuration = true")
            self._ready = True
        elif reloaded & (WIDE_INPUTS | {"experiments"}) or "experiments" in touched:
            self._db.execute(f"CREATE OR REPLACE TABLE runs_wide AS {runs_wide_sql(DUCKDB)}")
        elif touched:
            self._update_runs_wide(touched)

    def _version(self, name: str) -> int:
        if self.pinned is not None:
            return self.pinned[name]
        dt = self._tables.get(name)
        try:
            if dt is None:
                dt = self._tables[name] = open_table(self.location, name)
            else:
                dt.update_incremental()
        except DeltaError as exc:
            raise StorageError(f"table {self.location.table_uri(name)} cannot be read: {exc}") from exc
        return dt.version() if dt is not None else MISSING

    def _files_of(self, name: str, version: int) -> tuple[str, ...]:
        dt = self._tables.get(name)
        if self.pinned is None and dt is not None and dt.version() == version:
            return tuple(dt.file_uris())
        return table_read(self.location, name, version).files

    def _load(self, name: str, version: int) -> set[str] | None:
        """Load ``name`` at ``version``: the run ids its new rows touch, or None for a full reload."""
        files = self._files_of(name, version)
        current, seen = frozenset(files), self._files.get(name)
        if seen is not None and seen <= current and self.location.is_local:
            touched = self._merge(name, version, [f for f in files if f not in seen])
        else:
            self._replace_state(name, self._compute_state(name, version, list(files)))
            touched = None
        self._files[name] = current
        if name in HISTORY_TABLES:
            self._db.unregister(RAW_PREFIX + name)
            self._db.register(RAW_PREFIX + name, self._dataset(name, version, files))
        return touched

    def _replace_state(self, name: str, state: pa.Table) -> None:
        self._db.register("sparkml_incoming", state)
        try:
            self._db.execute(f"CREATE OR REPLACE TABLE {STATE_PREFIX}{name} AS SELECT * FROM sparkml_incoming")
        finally:
            self._db.unregister("sparkml_incoming")

    def _merge(self, name: str, version: int, files: list[str]) -> set[str]:
        """Fold the rows of new files into the state: only the keys they carry are recomputed."""
        if not files:
            return set()
        rows = _conform(self._read_rows(name, version, files), TABLES[name].schema)
        state = STATE_PREFIX + name
        same = " AND ".join(f"x.{DUCKDB.q(k)} IS NOT DISTINCT FROM y.{DUCKDB.q(k)}" for k in TABLES[name].state_key)
        self._db.register("sparkml_incoming", rows)
        try:
            self._db.execute(
                "CREATE OR REPLACE TEMP VIEW sparkml_merge AS "
                f"SELECT * FROM {state} AS x WHERE EXISTS (SELECT 1 FROM sparkml_incoming AS y WHERE {same}) "
                "UNION ALL BY NAME SELECT * FROM sparkml_incoming")
            self._db.execute("CREATE OR REPLACE TEMP TABLE sparkml_changed AS "
                             + state_sql(name, DUCKDB, source="sparkml_merge"))
            self._db.execute(f"DELETE FROM {state} AS x WHERE EXISTS "
                             f"(SELECT 1 FROM sparkml_changed AS y WHERE {same})")
            self._db.execute(f"INSERT INTO {state} BY NAME SELECT * FROM sparkml_changed")
        finally:
            self._db.execute("DROP VIEW IF EXISTS sparkml_merge")
            self._db.execute("DROP TABLE IF EXISTS sparkml_changed")
            self._db.unregister("sparkml_incoming")
        if "run_id" in rows.column_names:
            return set(rows.column("run_id").unique().drop_null().to_pylist())
        return {"experiments"} if name == "experiments" else set()

    def _update_runs_wide(self, run_ids: set[str]) -> None:
        self._db.register("sparkml_touched", pa.table({"run_id": pa.array(sorted(run_ids), pa.string())}))
        only = "SELECT run_id FROM sparkml_touched"
        try:
            self._db.execute(f"DELETE FROM runs_wide WHERE run_id IN ({only})")
            self._db.execute(f"INSERT INTO runs_wide BY NAME {runs_wide_sql(DUCKDB, only)}")
        finally:
            self._db.unregister("sparkml_touched")

    def _read_rows(self, name: str, version: int, files: list[str]) -> pa.Table:
        try:
            return self._loader.sql(f"SELECT * FROM {self._raw_relation(name, version, files)}").to_arrow_table()
        except duckdb.IOException as exc:
            raise StorageError(f"table {self.location.table_uri(name)} version {version} cannot be read: "
                               f"{one_line(exc)} (a data file may have been removed by vacuum)") from exc

    def _compute_state(self, name: str, version: int, files: list[str]) -> pa.Table:
        schema = TABLES[name].schema
        if not files:
            return schema.empty_table()
        try:
            self._loader.execute(f"CREATE OR REPLACE TEMP VIEW {RAW_PREFIX}{name} AS "
                                 f"SELECT * FROM {self._raw_relation(name, version, files)}")
            out = self._loader.sql(state_sql(name, DUCKDB)).to_arrow_table()
        except duckdb.IOException as exc:
            raise StorageError(f"table {self.location.table_uri(name)} version {version} cannot be read: "
                               f"{one_line(exc)} (a data file may have been removed by vacuum)") from exc
        finally:
            self._loader.unregister("sparkml_remote")
        return _conform(out, schema)

    def _raw_relation(self, name: str, version: int, files: list[str]) -> str:
        if self.location.is_local:
            quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            return f"read_parquet([{quoted}], union_by_name = true)"
        self._loader.register("sparkml_remote", self._dataset(name, version, files))
        return "sparkml_remote"

    def _dataset(self, name: str, version: int, files: tuple[str, ...] | list[str]):
        """A lazy scan of the table's files, for the query database (which cannot open files)."""
        schema = TABLES[name].schema
        if not files:
            return schema.empty_table()
        if self.location.is_local:
            return ds.dataset(list(files), format="parquet", schema=schema)
        dt = open_table(self.location, name, version)
        return dt.to_pyarrow_dataset() if dt is not None else schema.empty_table()

    # -- querying ----------------------------------------------------------------------

    def run(self, sql: str) -> pa.Table:
        try:
            return self._db.sql(sql).to_arrow_table()
        except duckdb.PermissionException:
            raise BadInput("the query tried to read or write files; queries may only read the tracking views: "
                           + ", ".join(VIEW_NAMES)) from None
        except (duckdb.BinderException, duckdb.CatalogException) as exc:
            raise BadInput(f"SQL error: {one_line(exc)} (views: {', '.join(VIEW_NAMES)})") from None
        except duckdb.ParserException as exc:
            raise BadInput(f"SQL syntax error: {one_line(exc)}") from None
        except duckdb.OutOfMemoryException as exc:
            raise SparkmlOpsError(f"the query ran out of memory: {one_line(exc)}") from None
        except duckdb.Error as exc:
            raise BadInput(f"the query failed: {one_line(exc)}") from None


_CATALOGS: OrderedDict[tuple, _Catalog] = OrderedDict()
_REGISTRY_LOCK = threading.Lock()


def _catalog(location: RootLocation, as_of: AsOf) -> _Catalog:
    point = parse_as_of(as_of)
    pinned = None if point is None else resolve_versions(location, point)
    key = (location.uri, None if pinned is None else tuple(sorted(pinned.items())))
    with _REGISTRY_LOCK:
        catalog = _CATALOGS.get(key)
        if catalog is None:
            catalog = _CATALOGS[key] = _Catalog(location, pinned)
            pinned_keys = [k for k in _CATALOGS if k[1] is not None]
            for old in pinned_keys[:-_MAX_PINNED_CATALOGS]:
                del _CATALOGS[old]
        _CATALOGS.move_to_end(key)
        return catalog


def _flush_own_writes(location: RootLocation) -> None:
    """A process reads its own writes: commit what its writer for this root still holds."""
    from sparkml_ops.lake import Lake

    lake = Lake.opened(location)  # only a root this process already opened
    if lake is not None:
        lake.flush()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [table.column(f.name).cast(f.type) if table.column(f.name).type != f.type else table.column(f.name)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)
