"""Downsampled metric history: what the UI's charts ask for (``get-history-bulk-interval``).

MLflow's default answer reads a run's whole history into ``Metric`` objects, twice, and
samples in Python; a 100,000-step chart then costs seconds. Here the sample is chosen on
Arrow columns (the run's rows found by a vectorised scan, sorted once and kept until the
metrics change) and only the chosen rows become ``Metric`` objects, so the cost is one
scan of the metric rows and one sort of one run's rows, and a repeated chart costs neither.

The sample is the one MLflow's SQL store takes: rows ordered by (step, timestamp, value)
split into ``max_results`` NTILE buckets, the first row of each bucket, and the last row
so the chart keeps its end point.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import Metric
from mlflow.entities.metric import MetricWithRunId

from sparkml_ops.errors import BadInput
from sparkml_ops.tracking.state import drop_repeats

_ORDER = [("step", "ascending"), ("timestamp", "ascending"), ("value", "ascending")]
_POINT = ["step", "timestamp", "value"]


def ntile_sample(n: int, buckets: int) -> np.ndarray:
    """Row indices of the first row of each of ``buckets`` NTILE buckets over ``n`` rows, plus the last.

    NTILE gives the first ``n % buckets`` buckets one row more than the others; with
    ``n <= buckets`` every row is its own bucket. When the last row is not a bucket start it
    replaces the last start if that would exceed ``buckets`` (MLflow's SQL store does the same).
    """
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n <= buckets:
        return np.arange(n, dtype=np.int64)
    size, extra = divmod(n, buckets)
    sizes = np.full(buckets, size, dtype=np.int64)
    sizes[:extra] += 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    if starts[-1] != n - 1:
        starts[-1] = n - 1  # len(starts) == buckets already: replace, never exceed
    return starts


KEY_HISTORIES_KEPT = 8  # sorted (run, key) histories per store: the charts of one page


class SortedHistories:
    """One run's points of one metric in sampling order, kept until the metrics table changes.

    A chart asks for the same (run, key) again on every refresh and zoom. A miss scans the
    raw metric rows with two vectorised equality tests and sorts only that run's points:
    no sort of the whole table (which the grouped history view needs after every write).
    """

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Any, str, str], pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: Any, data: pa.Table, run_id: str, metric_key: str) -> pa.Table:
        key = (version, run_id, metric_key)
        with self._lock:
            hit = self._kept.get(key)
            if hit is not None:
                self._kept.move_to_end(key)
                return hit
        rows = data.filter(pc.and_(pc.equal(data.column("run_id"), run_id),
                                   pc.equal(data.column("key"), metric_key))).select(_POINT)
        rows = rows.take(pc.sort_indices(rows, sort_keys=_ORDER))
        # MLflow 3's log_model logs a run's latest metrics again with the model's id; MLflow's
        # stores keep one (step, timestamp, value) point per run, so the copy is dropped.
        rows = drop_repeats(rows, _POINT)
        with self._lock:
            self._kept = OrderedDict((k, v) for k, v in self._kept.items() if k[0] == version)
            self._kept[key] = rows
            while len(self._kept) > KEY_HISTORIES_KEPT:
                self._kept.popitem(last=False)
        return rows


class MetricSamplingMixin:
    """``get_metric_history_bulk_interval`` for the Delta tracking store (needs ``lake``, ``_run_row``)."""

    lake: Any
    _run_row: Callable[[str], dict[str, Any]]
    _sorted_histories: SortedHistories | None = None

    def get_metric_history_bulk_interval(self, run_ids: list[str], metric_key: str, max_results: int,
                                         start_step: int | None, end_step: int | None) -> list[MetricWithRunId]:
        """Up to ``max_results`` points per run, evenly spread over the run's rows of ``metric_key``."""
        if (start_step is None) != (end_step is None):
            raise BadInput(f"start_step={start_step!r} and end_step={end_step!r}: give both or neither.")
        buckets = max(1, int(max_results))
        for run_id in run_ids:
            self._run_row(run_id)  # NotFound for an unknown run, before any work
        if self._sorted_histories is None:
            self._sorted_histories = SortedHistories()
        version, data = self.lake.read_keyed("metrics")
        out: list[MetricWithRunId] = []
        for run_id in run_ids:
            rows = self._sorted_histories.get(version, data, run_id, metric_key)
            if start_step is not None and end_step is not None:
                steps = rows.column("step").to_numpy()  # sorted: the window is one slice
                first = int(np.searchsorted(steps, int(start_step), side="left"))
                stop = int(np.searchsorted(steps, int(end_step), side="right"))
                rows = rows.slice(first, stop - first)
            if rows.num_rows == 0:
                continue
            picked = rows.take(pa.array(ntile_sample(rows.num_rows, buckets)))
            values, timestamps, steps = (picked.column(c).to_pylist() for c in ("value", "timestamp", "step"))
            out.extend(MetricWithRunId(metric=Metric(metric_key, v, t, s), run_id=run_id)
                       for v, t, s in zip(values, timestamps, steps, strict=True))
        return out
