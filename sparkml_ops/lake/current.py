"""Current-state tables: the latest row per key of runs, params, tags and metrics.

A search over a root with a million runs must not read its tens of millions of history rows.
:func:`build` (run by ``sparkml-ops maintain``) writes, with DuckDB over the source tables'
Parquet files, one build under ``<root>/current/<build>/``:

- ``runs``: the latest row of each run, ordered by ``(experiment_id, run_id)`` and numbered
  ``rix`` (an experiment's runs are one ``rix`` range);
- ``<table>_by_key`` for params, tags and metrics: the latest row per ``(run, key)`` as
  ``(rix, key, value, …)`` sorted by ``(key, rix)`` in large row groups: a search reads the row
  groups of the keys it names, skipped on their statistics.

These are Delta tables (one Parquet file each): any engine can read a root's current state.
Beside them, for random access by run, the same rows as uncompressed Arrow IPC files that
readers memory-map: ``runs.arrow`` (row = rix) and ``<table>_by_run.arrow`` sorted by
``(rix, key)`` with ``<table>_offsets.npy`` (first row of each run): a page of 100 runs
touches only its own rows, where Parquet would decode a whole row group per run.

``current/manifest.json`` names the build in use and the source data files it covers; rows
in other files (committed after the build) and a writer's uncommitted rows are the *tail*,
which readers merge in (:meth:`Lake.read_tail`). Tags keep their tombstones so that an older
tail row never revives a deleted tag. Only local roots have current-state tables (DuckDB
reads the files directly).
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sparkml_ops.lake.delta import commit_files, data_files
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TABLES

STATE_DIR = "current"
MANIFEST = "manifest.json"
SOURCES = ("params", "tags", "metrics", "runs")  # listed in this order: no value row of a run the build lacks
VALUE_TABLES = ("params", "tags", "metrics")
BY_KEY_ROW_GROUP = 65_536
RUNS_ROW_GROUP = 8_192
IPC_BATCH = 1_048_576
OFFSETS = "{table}_offsets.npy"  # first row of each run in <table>_by_run (rix -> row), and the row count last
KEPT_BUILDS = 2  # the build in use and the one before (a reader may still be on it)

# The latest row of each (run, key), as the tables' specs define "latest"; seq breaks full ties.
_LATEST = {
    "runs": ("run_id", "seq DESC"),
    "params": ("run_id, key", "seq DESC"),
    "tags": ("run_id, key", "seq DESC"),
    "metrics": ("run_id, key", "step DESC, timestamp DESC, value DESC, seq DESC"),
}
VALUE_COLUMNS = {
    "params": ("value", "seq"),
    "tags": ("value", "deleted", "seq"),
    "metrics": ("value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest", "seq"),
}


def manifest_path(location: RootLocation) -> Path:
    return Path(location.uri) / STATE_DIR / MANIFEST


@dataclass(frozen=True)
class BuildReport:
    build: str
    runs: int
    seconds: float


def build(location: RootLocation, *, memory_limit: str = "1GB") -> BuildReport | None:
    """Write a new build of the current-state tables and make it the one in use.

    Returns None for object-store roots (not supported: searches there read the tables whole).
    Readers keep using the previous build until the manifest names the new one; builds older
    than the previous one are removed.
    """
    if not location.is_local:
        return None
    began = time.perf_counter()
    base = Path(location.uri) / STATE_DIR
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    directory = base / name
    directory.mkdir(parents=True)
    covered: dict[str, list[str]] = {}
    con = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": memory_limit,
                                              "preserve_insertion_order": True,
                                              "temp_directory": str(directory / "_spill")})
    try:
        con.execute("SET enable_progress_bar = false")
        for table in SOURCES:
            uri = location.table_uri(table)
            files = data_files(uri)
            covered[table] = [os.path.relpath(f, uri) for f in files]
            _source_view(con, table, files)
        keys, order = _LATEST["runs"]
        con.execute(f"CREATE TEMP TABLE run_latest AS SELECT * FROM src_runs "
                    f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1")
        con.execute("CREATE TEMP TABLE run_ix AS SELECT run_id, "
                    "(row_number() OVER (ORDER BY experiment_id, run_id) - 1)::BIGINT AS rix FROM run_latest")
        runs = con.execute("SELECT count(*) FROM run_ix").fetchone()
        runs_query = "SELECT i.rix, r.* FROM run_latest r JOIN run_ix i USING (run_id) ORDER BY i.rix"
        _write(con, directory, "runs", runs_query, RUNS_ROW_GROUP)
        _write_ipc(con, directory / "runs.arrow", runs_query)
        n_runs = int(runs[0]) if runs else 0
        for table in VALUE_TABLES:
            keys, order = _LATEST[table]
            columns = ", ".join(f"v.{c}" for c in VALUE_COLUMNS[table])
            latest = f"SELECT * FROM src_{table} QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1"
            con.execute(f"CREATE TEMP TABLE latest_{table} AS SELECT i.rix, v.key, {columns} FROM ({latest}) v "
                        "JOIN run_ix i USING (run_id)")
            _write(con, directory, f"{table}_by_key", f"SELECT * FROM latest_{table} ORDER BY key, rix",
                   BY_KEY_ROW_GROUP)
            _write_ipc(con, directory / f"{table}_by_run.arrow", f"SELECT * FROM latest_{table} ORDER BY rix, key")
            counts = con.execute(f"SELECT rix, count(*) AS n FROM latest_{table} GROUP BY rix").fetchnumpy()
            per_run = np.zeros(n_runs, dtype=np.int64)
            per_run[counts["rix"].astype(np.int64)] = counts["n"]
            np.save(directory / OFFSETS.format(table=table), np.concatenate(([0], np.cumsum(per_run))))
            con.execute(f"DROP TABLE latest_{table}")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # never a half-written build
        raise
    finally:
        con.close()
        shutil.rmtree(directory / "_spill", ignore_errors=True)
    manifest = {"build": name, "covered": covered, "runs": n_runs}
    staging = base / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    staging.write_text(json.dumps(manifest))
    os.replace(staging, base / MANIFEST)  # readers see the old build or the new one, whole
    _remove_old_builds(base, name)
    return BuildReport(name, n_runs, time.perf_counter() - began)


MIN_COMPACTION_TARGET = 1 << 20


def compaction_target(location: RootLocation, table: str, default: int) -> int:
    """The file size below which background compaction may rewrite ``table``'s files.

    Below the smallest file the current build covers (at least 1 MiB, at most ``default``):
    delta-rs leaves larger files alone, so the build's files survive and the tail stays the
    rows logged since, not the whole table again. Without a build: ``default``.
    """
    try:
        manifest = json.loads(manifest_path(location).read_text()) if location.is_local else None
    except (FileNotFoundError, ValueError):
        manifest = None
    if manifest is None or not manifest["covered"].get(table):
        return default
    sizes = []
    for name in manifest["covered"][table]:
        try:
            sizes.append(os.path.getsize(os.path.join(location.table_uri(table), name)))
        except OSError:  # compacted or vacuumed away since: no longer the build's concern
            continue
    return max(MIN_COMPACTION_TARGET, min([default, *sizes]))


def _source_view(con: duckdb.DuckDBPyConnection, table: str, files: list[str]) -> None:
    if files:  # our own file paths (never user input), quoted as SQL literals
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE TEMP VIEW src_{table} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
    else:
        con.register(f"src_{table}", TABLES[table].schema.empty_table())


def _write(con: duckdb.DuckDBPyConnection, directory: Path, table: str, query: str, row_group: int) -> None:
    target = directory / table
    target.mkdir()
    file = target / "part-00000.parquet"
    con.execute(f"COPY ({query}) TO '{file}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group})")
    commit_files(target, [file], app_id="sparkml_ops-current", version=1)


def _write_ipc(con: duckdb.DuckDBPyConnection, path: Path, query: str) -> None:
    reader = con.sql(query).to_arrow_reader(IPC_BATCH)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def _remove_old_builds(base: Path, current: str) -> None:
    builds = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
                    key=lambda p: p.name)
    older = [p.name for p in builds if p.name != current]
    keep = {current, *older[len(older) - (KEPT_BUILDS - 1):]}
    for old in builds:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


# -- reading ---------------------------------------------------------------------------------

_DICTIONARY_COLUMNS = ("key", "value", "experiment_id", "lifecycle_stage", "status", "user_id", "model_id",
                       "dataset_name", "dataset_digest")  # read dictionary-encoded: a few distinct values each


def _file(path: Path) -> pq.ParquetFile:
    names = pq.read_schema(path).names
    return pq.ParquetFile(path, read_dictionary=[n for n in _DICTIONARY_COLUMNS if n in names])


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _plain(table: pa.Table) -> pa.Table:
    return pa.Table.from_arrays([_decoded(c) for c in table.columns], names=table.column_names)


def _equal(column: pa.ChunkedArray, value: str) -> pa.ChunkedArray:
    """``column == value`` for a (dictionary-encoded) string column, comparing dictionary codes."""
    if not pa.types.is_dictionary(column.type):
        return pc.equal(column, value)
    parts = []
    for chunk in column.chunks:
        code = pc.index(chunk.dictionary, value).as_py()
        parts.append(pc.equal(chunk.indices, code) if code >= 0 else pa.array(np.zeros(len(chunk), dtype=bool)))
    return pa.chunked_array(parts, pa.bool_())


@dataclass
class _ByKey:
    """A ``<table>_by_key`` file and the key range of each of its row groups (from their statistics)."""

    file: pq.ParquetFile
    key_min: list[str | None]
    key_max: list[str | None]

    @classmethod
    def of(cls, path: Path) -> _ByKey:
        file = _file(path)
        meta = file.metadata
        at = meta.schema.to_arrow_schema().names.index("key")
        lows: list[str | None] = []
        highs: list[str | None] = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(at).statistics
            ok = stats is not None and stats.has_min_max
            lows.append(stats.min if ok else None)
            highs.append(stats.max if ok else None)
        return cls(file, lows, highs)

    def groups_with(self, key: str) -> list[int]:
        return [i for i, (lo, hi) in enumerate(zip(self.key_min, self.key_max, strict=True))
                if lo is None or hi is None or lo <= key <= hi]


class _ByRun:
    """A memory-mapped Arrow IPC file sorted by rix, and the first row of each run in it."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        with open(path, "rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        # a page of runs touches a few rows per column: without this, every fault would read ahead
        # megabytes of the file (and count them in the process's resident memory)
        self._map.madvise(mmap.MADV_RANDOM)
        self.table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(self._map))).read_all()  # zero-copy
        self.offsets = offsets  # rix -> first row; offsets[-1] = rows

    def rows(self, rix: np.ndarray) -> pa.Table:
        """The rows of runs ``rix`` (sorted, distinct), in rix order.

        Zero-copy slices of the mapped file, one per stretch of adjacent runs: only those rows'
        pages are read (a compute ``take`` would scan every chunk it touches).
        """
        starts, stops = self.offsets[rix], self.offsets[rix + 1]
        keep = stops > starts
        starts, stops = starts[keep], stops[keep]
        if len(starts) == 0:
            return self.table.schema.empty_table()
        breaks = np.flatnonzero(starts[1:] != stops[:-1]) + 1  # where a stretch of adjacent runs ends
        firsts = np.concatenate(([0], breaks))
        lasts = np.concatenate((breaks, [len(starts)])) - 1
        return pa.concat_tables([self.table.slice(int(a), int(b - a))
                                 for a, b in zip(starts[firsts], stops[lasts], strict=True)])


@dataclass
class CurrentState:
    """One build of the current-state tables, read lazily (columns and row groups on demand)."""

    location: RootLocation
    build: str
    covered: dict[str, frozenset[str]]  # source table -> its data files (as the snapshots list them)
    runs_count: int
    _by_key: dict[str, _ByKey] = field(default_factory=dict, repr=False)
    _by_run: dict[str, _ByRun] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def directory(self) -> Path:
        return Path(self.location.uri) / STATE_DIR / self.build

    def _path(self, table: str) -> Path:
        return self.directory / table / "part-00000.parquet"

    def by_key(self, table: str) -> _ByKey:
        with self._lock:
            index = self._by_key.get(table)
            if index is None:
                index = self._by_key[table] = _ByKey.of(self._path(f"{table}_by_key"))
            return index

    def by_run(self, table: str) -> _ByRun:
        with self._lock:
            index = self._by_run.get(table)
            if index is None:
                if table == "runs":
                    index = _ByRun(self.directory / "runs.arrow", np.arange(self.runs_count + 1, dtype=np.int64))
                else:
                    offsets = np.load(self.directory / OFFSETS.format(table=table), mmap_mode="r")
                    index = _ByRun(self.directory / f"{table}_by_run.arrow", offsets)
                self._by_run[table] = index
            return index

    def run_column(self, name: str) -> pa.ChunkedArray:
        """One column of the latest run rows, every run in rix order (memory-mapped: no copy)."""
        return self.by_run("runs").table.column(name)

    def run_rows(self, table: str, rix: np.ndarray) -> pa.Table:
        """Rows of ``table`` (``runs`` or a value table) of the runs ``rix``, in rix order."""
        rix = np.unique(np.asarray(rix, dtype=np.int64))
        return _plain(self.by_run(table).rows(rix))

    def key_rows(self, table: str, key: str, columns: list[str]) -> pa.Table:
        """``columns`` of the latest rows of ``key`` in value table ``table``, rix ascending."""
        index = self.by_key(table)
        groups = index.groups_with(key)
        wanted = list(dict.fromkeys(["rix", "key", *columns]))
        if not groups:
            return _plain(index.file.schema_arrow.empty_table().select(wanted)).drop_columns(["key"])
        rows = index.file.read_row_groups(groups, columns=wanted, use_threads=False)
        return _plain(rows.filter(_equal(rows.column("key"), key)).drop_columns(["key"]))


def load(location: RootLocation, *, known: CurrentState | None = None) -> CurrentState | None:
    """The build the manifest names (``known`` again when it is still that one), or None."""
    if not location.is_local:
        return None
    try:
        manifest = json.loads(manifest_path(location).read_text())
    except FileNotFoundError:
        return None
    if known is not None and known.build == manifest["build"]:
        return known
    covered = {
        table: frozenset(os.path.join(location.table_uri(table), f) for f in files)
        for table, files in manifest["covered"].items()
    }
    return CurrentState(location, manifest["build"], covered, int(manifest["runs"]))
