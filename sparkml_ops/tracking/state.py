"""Current tracking state derived from the append-only tables, vectorised and cached.

Each derived view (latest run rows, live tags, latest metric per key …) is recomputed only
when its table's rows change, with Arrow compute: no per-row Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkml_ops.lake import Lake


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
        head, tail = column.slice(0, n - 1), column.slice(1)
        both_null = pc.and_(pc.is_null(head), pc.is_null(tail))
        differs = pc.if_else(both_null, False, pc.fill_null(pc.not_equal(head, tail), True))
        boundary |= differs.to_numpy(zero_copy_only=False)
    is_last = np.append(boundary, True)
    return ordered.filter(pa.array(is_last))


def live(table: pa.Table) -> pa.Table:
    """Drop tombstones (``deleted`` rows) from a latest-state table."""
    if "deleted" not in table.column_names or table.num_rows == 0:
        return table
    return table.filter(pc.invert(pc.fill_null(table.column("deleted"), False)))


@dataclass(frozen=True)
class Grouped:
    """A table sorted by an id column, with the row range of each id: O(1) per-entity reads."""

    table: pa.Table
    ranges: dict[str, tuple[int, int]]

    def rows(self, entity_id: str) -> pa.Table:
        start, stop = self.ranges.get(entity_id, (0, 0))
        return self.table.slice(start, stop - start)

    def pylist(self, entity_id: str) -> list[dict[str, Any]]:
        return self.rows(entity_id).to_pylist()


def group_by_id(table: pa.Table, id_column: str) -> Grouped:
    if table.num_rows == 0:
        return Grouped(table, {})
    ordered = table.take(pc.sort_indices(table, sort_keys=[(id_column, "ascending")]))
    ids = ordered.column(id_column).to_numpy(zero_copy_only=False)
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [len(ids)]))
    ranges = {ids[s]: (int(s), int(e)) for s, e in zip(starts, stops, strict=True)}
    return Grouped(ordered, ranges)


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
        return self.derive("experiments", "experiments", lambda t: latest_by(t, ["experiment_id"], ["seq"]))

    def experiment_tags(self) -> Grouped:
        return self.derive(
            "experiment_tags", "experiment_tags",
            lambda t: group_by_id(live(latest_by(t, ["experiment_id", "key"], ["seq"])), "experiment_id"),
        )

    # -- runs --------------------------------------------------------------------------

    def runs(self) -> pa.Table:
        return self.derive("runs", "runs", lambda t: latest_by(t, ["run_id"], ["seq"]))

    def params(self) -> Grouped:
        return self.derive(
            "params", "params", lambda t: group_by_id(latest_by(t, ["run_id", "key"], ["seq"]), "run_id")
        )

    def tags(self) -> Grouped:
        return self.derive(
            "tags", "tags", lambda t: group_by_id(live(latest_by(t, ["run_id", "key"], ["seq"])), "run_id")
        )

    def latest_metrics(self) -> Grouped:
        return self.derive(
            "metrics", "latest_metrics",
            lambda t: group_by_id(latest_by(t, ["run_id", "key"], ["step", "timestamp", "value"]), "run_id"),
        )

    def metric_history(self) -> Grouped:
        return self.derive("metrics", "metric_history", lambda t: group_by_id(t, "run_id"))

    def inputs(self) -> Grouped:
        return self.derive(
            "inputs", "inputs",
            lambda t: group_by_id(latest_by(t, ["run_id", "kind", "name", "digest", "model_id"], ["seq"]), "run_id"),
        )

    def outputs(self) -> Grouped:
        return self.derive(
            "outputs", "outputs",
            lambda t: group_by_id(latest_by(t, ["run_id", "model_id"], ["seq"]), "run_id"),
        )

    # -- logged models -----------------------------------------------------------------

    def logged_models(self) -> pa.Table:
        return self.derive("logged_models", "logged_models", lambda t: latest_by(t, ["model_id"], ["seq"]))

    def logged_model_tags(self) -> Grouped:
        return self.derive(
            "logged_model_tags", "logged_model_tags",
            lambda t: group_by_id(live(latest_by(t, ["model_id", "key"], ["seq"])), "model_id"),
        )

    def logged_model_params(self) -> Grouped:
        return self.derive(
            "logged_model_params", "logged_model_params",
            lambda t: group_by_id(latest_by(t, ["model_id", "key"], ["seq"]), "model_id"),
        )

    def model_metrics(self) -> Grouped:
        def build(t: pa.Table) -> Grouped:
            with_model = t.filter(pc.is_valid(t.column("model_id")))
            latest = latest_by(with_model, ["model_id", "key", "dataset_name", "dataset_digest"],
                               ["step", "timestamp", "value"])
            return group_by_id(latest, "model_id")

        return self.derive("metrics", "model_metrics", build)
