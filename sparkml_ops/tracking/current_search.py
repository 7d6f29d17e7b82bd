"""Run search over a root's current-state build plus its tail (see :mod:`sparkml_ops.lake.current`).

Once ``sparkml-ops maintain`` has built the current-state tables, a search reads only the run
columns and the row groups of the keys it names, merges in the tail (rows committed since the
build and this process's uncommitted rows), filters and orders with the same code as the
in-memory path (:mod:`sparkml_ops.tracking.search`), and reads params, tags and metrics for
the page it returns only. Runs are addressed by ``rix``: their row in the build, or a number
past the build's runs for a run only the tail holds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import LifecycleStage, ViewType

from sparkml_ops.lake.current import CurrentState
from sparkml_ops.tracking.search import StateValues, ValueKind, attribute_columns
from sparkml_ops.tracking.state import Grouped, TrackingState, latest_by, latest_rows

TAIL_TABLES = ("runs", "params", "tags", "metrics")
_TABLE_OF: dict[str, str] = {"metric": "metrics", "parameter": "params", "tag": "tags"}
# "latest" as the build defines it (lake.current._LATEST), ascending: the last row wins
_ORDER = {"params": ["seq"], "tags": ["seq"], "metrics": ["step", "timestamp", "value", "seq"]}
_VALUE_COLUMNS = {
    "params": ["value", "seq"],
    "tags": ["value", "deleted", "seq"],
    "metrics": ["value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest", "seq"],
}
KEYS_KEPT = 8  # resolved keys kept per view (each ~16 MB at a million runs)


class CurrentView:
    """One current-state build merged with one version of the tail; searches read it."""

    def __init__(self, state: CurrentState, tails: dict[str, pa.Table], memory: TrackingState) -> None:
        self.state = state
        self.memory = memory  # inputs (datasets) are read from the in-memory state: small tables
        self.n = state.runs_count
        runs = latest_rows("runs", tails["runs"])
        position = self._state_rix(runs.column("run_id")) if runs.num_rows else np.zeros(0, dtype=np.int64)
        known = position >= 0
        newer = ~known
        if known.any():
            state_seq = self.state.run_column("seq").take(pa.array(position[known])).to_numpy()
            newer[known] = runs.column("seq").to_numpy()[known] > state_seq  # a rewritten copy is not newer
        runs, position = runs.filter(pa.array(newer)), position[newer]
        fresh = position < 0
        position[fresh] = self.n + np.arange(int(fresh.sum()), dtype=np.int64)
        self.tail_runs = runs.append_column("rix", pa.array(position, pa.int64()))
        self.replaced = np.zeros(self.n, dtype=bool)
        self.replaced[position[~fresh]] = True
        self.size = self.n + int(fresh.sum())
        self.tails = {name: self._with_rix(tails[name]) for name in TAIL_TABLES[1:]}
        self._keys: OrderedDict[tuple[str, str], pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    # -- run ids <-> rix ------------------------------------------------------------------

    def _state_rix(self, run_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Row of each run id in the build (-1: not there)."""
        found = pc.index_in(run_ids, value_set=self.state.run_column("run_id"))
        return pc.fill_null(found, -1).to_numpy().astype(np.int64)

    def run_rix(self, run_id: str) -> int | None:
        """The rix of run ``run_id`` (None: neither the build nor the tail has it)."""
        ids = pa.array([run_id], pa.string())
        in_tail = pc.index_in(ids, value_set=self.tail_runs.column("run_id"))[0].as_py()
        if in_tail is not None:
            return int(self.tail_runs.column("rix")[in_tail].as_py())
        rix = int(self._state_rix(ids)[0])
        return rix if rix >= 0 else None

    def _with_rix(self, rows: pa.Table) -> pa.Table:
        """Tail value rows with the rix of their run (rows of runs nowhere are dropped)."""
        if rows.num_rows == 0:
            return rows.append_column("rix", pa.array([], pa.int64()))
        ids = rows.column("run_id")
        rix = self._state_rix(ids)
        in_tail = pc.index_in(ids, value_set=self.tail_runs.column("run_id"))
        tail_rix = self.tail_runs.column("rix").take(in_tail).to_numpy(zero_copy_only=False)
        only_tail = pc.is_valid(in_tail).to_numpy(zero_copy_only=False)
        rix[only_tail] = tail_rix[only_tail].astype(np.int64)
        rows = rows.append_column("rix", pa.array(rix, pa.int64()))
        return rows.filter(pa.array(rix >= 0))

    # -- values for filters and orders ----------------------------------------------------

    def values(self, kind: ValueKind, key: str, runs: pa.Table) -> pa.Array | pa.ChunkedArray:
        resolved = self._resolved(_TABLE_OF[kind], key)
        lookup = np.full(self.size, -1, dtype=np.int64)
        lookup[resolved.column("rix").to_numpy()] = np.arange(resolved.num_rows, dtype=np.int64)
        index = lookup[runs.column("rix").to_numpy()]
        return resolved.column("value").take(pa.array(index, mask=index < 0))

    def datasets(self) -> pa.Table:
        return StateValues(self.memory).datasets()

    def _resolved(self, table: str, key: str) -> pa.Table:
        """The current (rix, value) of ``key`` in value table ``table``: build and tail merged."""
        with self._lock:
            hit = self._keys.get((table, key))
            if hit is not None:
                self._keys.move_to_end((table, key))
                return hit
        tail = self.tails[table]
        if tail.num_rows:
            tail = tail.filter(pc.equal(tail.column("key"), key))
        merged_columns = ["rix", *_VALUE_COLUMNS[table]]
        wanted = _VALUE_COLUMNS[table] if tail.num_rows else ["value", *(["deleted"] if table == "tags" else [])]
        rows = self.state.key_rows(table, key, wanted)
        if tail.num_rows:
            rows = rows.select(merged_columns)
            tail = tail.select(merged_columns).cast(rows.schema)
            touched = pc.is_in(rows.column("rix"), value_set=tail.column("rix"))
            both = pa.concat_tables([rows.filter(touched), tail])
            rows = pa.concat_tables([rows.filter(pc.invert(touched)), latest_by(both, ["rix"], _ORDER[table])])
        if table == "tags":
            rows = rows.filter(pc.invert(pc.fill_null(rows.column("deleted"), False)))
        rows = rows.select(["rix", "value"])
        with self._lock:
            self._keys[(table, key)] = rows
            while len(self._keys) > KEYS_KEPT:
                self._keys.popitem(last=False)
        return rows

    # -- candidates and pages -------------------------------------------------------------

    def candidates(self, experiment_ids: Sequence[str], view_type: int, columns: set[str]) -> pa.Table:
        """``rix`` and ``columns`` of the runs of ``experiment_ids`` in ``view_type``."""
        mask = pc.is_in(self.state.run_column("experiment_id"),
                        value_set=pa.array(list(experiment_ids), pa.string())).to_numpy(zero_copy_only=False)
        if view_type != ViewType.ALL:
            stage = LifecycleStage.ACTIVE if view_type == ViewType.ACTIVE_ONLY else LifecycleStage.DELETED
            mask &= pc.equal(self.state.run_column("lifecycle_stage"), stage).to_numpy(zero_copy_only=False)
        mask &= ~self.replaced
        rix = np.flatnonzero(mask)
        everything = len(rix) == self.n
        names = sorted(columns)
        built = {"rix": pa.array(rix, pa.int64())}
        for name in names:
            column = self.state.run_column(name)
            built[name] = column if everything else column.take(pa.array(rix))
        tail = self.tail_runs
        if tail.num_rows:
            keep = pc.is_in(tail.column("experiment_id"), value_set=pa.array(list(experiment_ids), pa.string()))
            if view_type != ViewType.ALL:
                keep = pc.and_(keep, pc.equal(tail.column("lifecycle_stage"), stage))
            tail = tail.filter(keep)
        state_part = pa.table(built)
        if tail.num_rows == 0:
            return state_part
        return pa.concat_tables([state_part, tail.select(["rix", *names]).cast(state_part.schema)])

    def page_rows(self, rix: np.ndarray) -> list[dict[str, Any]]:
        """Run rows (dicts) of ``rix``, in that order."""
        from_tail = pc.index_in(pa.array(rix, pa.int64()), value_set=self.tail_runs.column("rix"))
        in_tail = pc.is_valid(from_tail).to_numpy(zero_copy_only=False)
        rows: dict[int, dict[str, Any]] = {}
        if in_tail.any():
            for row in self.tail_runs.take(pc.drop_null(from_tail)).to_pylist():
                rows[row["rix"]] = row
        state_rix = rix[~in_tail]
        if len(state_rix):
            for row in self.state.run_rows("runs", state_rix).to_pylist():
                rows[row["rix"]] = row
        out = []
        for r in rix.tolist():
            row = dict(rows[r])
            row.pop("rix", None)
            row.pop("seq", None)
            out.append(row)
        return out

    def page_values(self, table: str, rix: np.ndarray, run_ids: list[str]) -> Grouped:
        """Current rows of value table ``table`` for the runs ``rix`` (ids ``run_ids``), by run id."""
        columns = ["rix", "key", *_VALUE_COLUMNS[table]]
        order = np.argsort(rix, kind="stable")
        sorted_rix, sorted_ids = rix[order], pa.array(run_ids, pa.string()).take(pa.array(order))
        parts = []
        in_state = sorted_rix[sorted_rix < self.n]
        if len(in_state):
            parts.append(self.state.run_rows(table, in_state).select(columns))  # by (rix, key), one row each
        tail = self.tails[table]
        if tail.num_rows:
            tail = tail.filter(pc.is_in(tail.column("rix"), value_set=pa.array(rix, pa.int64())))
        if tail.num_rows:
            tail = tail.select(columns)
            parts.append(tail.cast(parts[0].schema) if parts else tail)
            rows = latest_by(pa.concat_tables(parts), ["rix", "key"], _ORDER[table])  # sorted by (rix, key)
        elif parts:
            rows = parts[0]
        else:
            return Grouped(pa.table({name: pa.array([], pa.null()) for name in [*columns, "run_id"]}), {})
        if table == "tags":
            rows = rows.filter(pc.invert(pc.fill_null(rows.column("deleted"), False)))
        at = rows.column("rix").to_numpy()
        position = np.searchsorted(sorted_rix, at)
        rows = rows.append_column("run_id", sorted_ids.take(pa.array(position)))
        if len(at) == 0:
            return Grouped(rows, {})
        change = np.flatnonzero(at[1:] != at[:-1]) + 1  # rows are in rix order: each run one stretch
        starts = np.concatenate(([0], change))
        stops = np.concatenate((change, [len(at)]))
        ids = sorted_ids.take(pa.array(position[starts])).to_pylist()
        return Grouped(rows, dict(zip(ids, zip(starts.tolist(), stops.tolist(), strict=True), strict=True)))


def page_columns(filter_string: str | None, order_by: Sequence[str] | None) -> set[str]:
    """Run columns a search needs before its page: ids, start times and what it filters or orders on."""
    return {"run_id", "start_time"} | attribute_columns(filter_string, order_by)
