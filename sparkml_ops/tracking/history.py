"""Downsampled metric history: what the UI's charts ask for (``get-history-bulk-interval``).

MLflow's default answer reads a run's whole history into ``Metric`` objects, twice, and
samples in Python; a 100,000-step chart then costs seconds. Here the sample is chosen on
Arrow columns (the run's rows come from the grouped history view in O(1)) and only the
chosen rows become ``Metric`` objects, so the cost is one sort of one run's rows.

The sample is the one MLflow's SQL store takes: rows ordered by (step, timestamp, value)
split into ``max_results`` NTILE buckets, the first row of each bucket, and the last row
so the chart keeps its end point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import Metric
from mlflow.entities.metric import MetricWithRunId

from sparkml_ops.errors import BadInput

_ORDER = [("step", "ascending"), ("timestamp", "ascending"), ("value", "ascending")]


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


class MetricSamplingMixin:
    """``get_metric_history_bulk_interval`` for the Delta tracking store (needs ``state``, ``_run_row``)."""

    state: Any
    _run_row: Callable[[str], dict[str, Any]]

    def get_metric_history_bulk_interval(self, run_ids: list[str], metric_key: str, max_results: int,
                                         start_step: int | None, end_step: int | None) -> list[MetricWithRunId]:
        """Up to ``max_results`` points per run, evenly spread over the run's rows of ``metric_key``."""
        if (start_step is None) != (end_step is None):
            raise BadInput(f"start_step={start_step!r} and end_step={end_step!r}: give both or neither.")
        buckets = max(1, int(max_results))
        for run_id in run_ids:
            self._run_row(run_id)  # NotFound for an unknown run, before any work
        history = self.state.metric_history()
        out: list[MetricWithRunId] = []
        for run_id in run_ids:
            rows = history.rows(run_id)
            rows = rows.filter(pc.equal(rows.column("key"), metric_key))
            if start_step is not None:
                steps = rows.column("step")
                rows = rows.filter(pc.and_(pc.greater_equal(steps, int(start_step)),
                                           pc.less_equal(steps, int(end_step))))
            if rows.num_rows == 0:
                continue
            rows = rows.take(pc.sort_indices(rows, sort_keys=_ORDER))
            picked = rows.take(pa.array(ntile_sample(rows.num_rows, buckets)))
            values, timestamps, steps = (picked.column(c).to_pylist() for c in ("value", "timestamp", "step"))
            out.extend(MetricWithRunId(metric=Metric(metric_key, v, t, s), run_id=run_id)
                       for v, t, s in zip(values, timestamps, steps, strict=True))
        return out
