"""What a study returns: the best trial and every trial as a pandas DataFrame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from sparkml_ops.tuning.space import flatten


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the study saw it end (times in epoch ms)."""

    number: int
    run_id: str
    status: str
    value: float | None
    params: dict[str, Any]
    metrics: dict[str, float]
    start_ms: int
    end_ms: int
    error: str | None = None


@dataclass(frozen=True)
class TuneResult:
    """The best parameters (nested, as the objective received them), their value and run, and all trials."""

    best_params: dict[str, Any]
    best_value: float
    best_run_id: str
    parent_run_id: str
    trials: pd.DataFrame


def trials_frame(records: list[TrialRecord], metric: str) -> pd.DataFrame:
    """One row per trial by number: ``number, run_id, status, <metric>, params.*, metrics.*, duration_s, error``."""
    rows = []
    for r in sorted(records, key=lambda r: r.number):
        row: dict[str, Any] = {"number": r.number, "run_id": r.run_id, "status": r.status, metric: r.value}
        row.update({f"params.{k}": v for k, v in flatten(r.params).items()})
        row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        row["duration_s"] = (r.end_ms - r.start_ms) / 1000.0 if r.end_ms and r.start_ms else None
        row["error"] = r.error
        rows.append(row)
    return pd.DataFrame(rows)
