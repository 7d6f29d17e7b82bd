"""Current tracking state derived from the append-only tables, vectorised and cached.

Each derived view (latest run rows, live tags, latest metric per key …) is recomputed only
when its table's rows change, with Arrow compute: no per-row Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkml_ops.lake import Lake
from sparkml_ops.lake.schemas import TABLES


def latest_rows(name: str, table: pa.Table) -> pa.Table:
    """The current row per key of table ``name``, as its spec defines it (``state_key``, ``state_order``)."""
    spec = TABLES[name]
    return latest_by(table, list(spec.state_key), list(spec.state_order))


def latest_by(table: pa.Table, keys: list[str], order: list[str]) -> pa.Table:
    """The last row of each ``keys`` group when ordered by ``order`` (ascending)."""
    if table.num_rows <= 1:
        return table
    sort_keys = [(k, "ascending") for k in keys + order]
    ordered = table.take(pc.sort_indices(table, sort_keys=sort_keys))
    n = ordered.num_rows
    boundary = np.zeros(n - 1, dtype=bool)
    for key in keys:
        column = ordered.column(key)
        boundary |= _differs(column.slice(0, n - 1), column.slice(1))
    if boundary.all():
        return ordered  # every key once (the usual case): filtering would only copy the table again
    return ordered.filter(pa.array(np.append(boundary, True)))


def drop_repeats(table: pa.Table, columns: list[str]) -> pa.Table:
    """Rows of a sorted table that differ from the row before them in ``columns``."""
    n = table.num_rows
    if n <= 1:
        return table
    new = np.zeros(n - 1, dtype=bool)
    for name in columns:
        column = table.column(name)
        new |= _differs(column.slice(0, n - 1), column.slice(1))
    return table if new.all() else table.filter(pa.array(np.append(True, new)))


def latest_in_logging_order(table: pa.Table, keys: list[str]) -> pa.Table:
    """The last row of each ``keys`` group, groups ordered by when each was first logged.

    MLflow's stores list a run's inputs in insertion order (re-logging one keeps its place).
    Rows of one append share a ``seq``; the sort is stable, so they keep their order.
    """
    if table.num_rows <= 1:
        return table
    ordered = table.take(pc.sort_indices(table, sort_keys=[("seq", "ascending")]))
    position = pa.array(np.arange(ordered.num_rows, dtype=np.int64))
    groups = (ordered.select(keys).append_column("_pos", position)
              .group_by(keys, use_threads=False).aggregate([("_pos", "min"), ("_pos", "max")]))
    by_first = pc.sort_indices(groups.column("_pos_min"))
    return ordered.take(pc.take(groups.column("_pos_max"), by_first))


def _differs(head: pa.ChunkedArray, tail: pa.ChunkedArray) -> np.ndarray:
    """Element-wise ``head != tail`` where two nulls are equal and a null differs from a value."""
    both_null = pc.and_(pc.is_null(head), pc.is_null(tail))
    return pc.if_else(both_null, False, pc.fill_null(pc.not_equal(head, tail), True)).to_numpy(zero_copy_only=False)


def live(table: pa.Table) -> pa.Table:
    """Drop tombstones (``deleted`` rows) from a latest-state table."""
    if "deleted" not in table.column_names or table.num_rows == 0:
        return table
    return table.filter(pc.invert(pc.fill_null(table.column("deleted"), False)))


INPUT_KEYS = ("run_id", "kind", "name", "digest", "model_id")  # one run input
KEY_ROWS_KEPT = 32  # per view; each is one key's rows (bounded memory)


@dataclass(frozen=True)
class Grouped:
    """A table sorted by an id column, with the row range of each id: O(1) per-entity reads."""

    table: pa.Table
    ranges: dict[str, tuple[int, int]]
    _by_key: dict[str, pa.Table] = field(default_factory=dict, init=False, repr=False, compare=False)

    def rows(self, entity_id: str) -> pa.Table:
        start, stop = self.ranges.get(entity_id, (0, 0))
        return self.table.slice(start, stop - start)

    def pylist(self, entity_id: str) -> list[dict[str, Any]]:
        return self.rows(entity_id).to_pylist()

    def gather(self, entity_ids: list[str], names: tuple[str, ...]) -> tuple[list[list[Any]], list[int]]:
        """Columns ``names`` (as Python lists) of the rows of ``entity_ids``, in that order, and
        each entity's row count: one conversion for many entities instead of one per entity."""
        spans = np.array([self.ranges.get(i, (0, 0)) for i in entity_ids], dtype=np.int64).reshape(-1, 2)
        counts = spans[:, 1] - spans[:, 0]
        offsets = np.cumsum(counts) - counts
        index = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(spans[:, 0] - offsets, counts)
        taken = self.table.take(pa.array(index))
        return [taken.column(name).to_pylist() for name in names], counts.tolist()

    def key_rows(self, key: str) -> pa.Table:
        """Rows whose ``key`` column is ``key``, kept with the view: searches ask for the same keys."""
        hit = self._by_key.get(key)
        if hit is None:
            hit = self.table.filter(pc.equal(self.table.column("key"), key))
            if len(self._by_key) < KEY_ROWS_KEPT:
                self._by_key[key] = hit
        return hit


def group_by_id(table: pa.Table, id_column: str, *, presorted: bool = False) -> Grouped:
    """``presorted``: the table is already ordered by ``id_column`` (``latest_by`` output whose
    first key it is), so the sort, a copy of every column, is skipped."""
    if table.num_rows == 0:
        return Grouped(table, {})
    ordered = table if presorted else table.take(pc.sort_indices(table, sort_keys=[(id_column, "ascending")]))
    column, n = ordered.column(id_column), ordered.num_rows
    change = np.flatnonzero(_differs(column.slice(0, n - 1), column.slice(1))) + 1  # no str per row
    starts = np.concatenate(([0], change)).astype(np.int64)
    stops = np.concatenate((change, [n])).astype(np.int64)
    ids = column.take(pa.array(starts)).to_pylist()
    ranges = dict(zip(ids, zip(starts.tolist(), stops.tolist(), strict=True), strict=True))
    return Grouped(ordered, ranges)


def latest_grouped(name: str, table: pa.Table, *, drop_tombstones: bool = False) -> Grouped:
    """Current row per key of table ``name``, grouped by the key's first column (already sorted by it)."""
    latest = latest_rows(name, table)
    return group_by_id(live(latest) if drop_tombstones else latest, TABLES[name].state_key[0], presorted=True)


class TrackingState:
    """Derived views over one :class:`Lake`, each cached until its table changes."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}
        self._lock = threading.Lock()

    def derive(self, table: str, name: str, build: Callable[[pa.Table], Any]) -> Any:
        key, data = self.lake.read_keyed(table)
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build(data)
        with self._lock:
            self._cache[name] = (key, value)
        return value

    # -- experiments -------------------------------------------------------------------

    def experiments(self) -> pa.Table:
        return self.derive("experiments", "experiments", lambda t: latest_rows("experiments", t))

    def experiment_tags(self) -> Grouped:
        return self.derive(
            "experiment_tags", "experiment_tags",
            lambda t: latest_grouped("experiment_tags", t, drop_tombstones=True),
        )

    # -- runs --------------------------------------------------------------------------

    def runs(self) -> pa.Table:
        return self.derive("runs", "runs", lambda t: latest_rows("runs", t))

    def params(self) -> Grouped:
        return self.derive(
            "params", "params", lambda t: latest_grouped("params", t)
        )

    def tags(self) -> Grouped:
        return self.derive(
            "tags", "tags", lambda t: latest_grouped("tags", t, drop_tombstones=True)
        )

    def latest_metrics(self) -> Grouped:
        return self.derive(
            "metrics", "latest_metrics",
            lambda t: latest_grouped("metrics", t),
        )

    def inputs(self) -> Grouped:
        return self.derive(
            "inputs", "inputs",
            lambda t: group_by_id(latest_in_logging_order(t, list(INPUT_KEYS)), "run_id"),
        )

    def outputs(self) -> Grouped:
        return self.derive(
            "outputs", "outputs",
            lambda t: group_by_id(latest_rows("outputs", t), "run_id"),
        )

    # -- logged models -----------------------------------------------------------------

    def logged_models(self) -> pa.Table:
        return self.derive("logged_models", "logged_models", lambda t: latest_rows("logged_models", t))

    def logged_model_tags(self) -> Grouped:
        return self.derive(
            "logged_model_tags", "logged_model_tags",
            lambda t: group_by_id(live(latest_rows("logged_model_tags", t)), "model_id"),
        )

    def logged_model_params(self) -> Grouped:
        return self.derive(
            "logged_model_params", "logged_model_params",
            lambda t: group_by_id(latest_rows("logged_model_params", t), "model_id"),
        )

    def model_metrics(self) -> Grouped:
        def build(t: pa.Table) -> Grouped:
            with_model = t.filter(pc.is_valid(t.column("model_id")))
            latest = latest_by(with_model, ["model_id", "key", "dataset_name", "dataset_digest"],
                               list(TABLES["metrics"].state_order))
            return group_by_id(latest, "model_id")

        return self.derive("metrics", "model_metrics", build)
