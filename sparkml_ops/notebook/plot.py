"""``plot_metrics``: metric histories of several runs in one matplotlib figure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sparkml_ops.errors import BadInput


def _run_ids(runs: Any) -> list[str]:
    """Run ids from a ``search_runs`` DataFrame, ``Run`` objects, or run-id strings."""
    if hasattr(runs, "columns"):
        if "run_id" not in runs.columns:
            raise BadInput(f"plot_metrics: the DataFrame has no 'run_id' column (columns: {list(runs.columns)[:8]})")
        return [str(r) for r in runs["run_id"]]
    if isinstance(runs, str) or hasattr(runs, "info"):
        runs = [runs]
    ids = []
    for run in runs if isinstance(runs, Iterable) else [runs]:
        if isinstance(run, str):
            ids.append(run)
        elif hasattr(run, "info"):
            ids.append(run.info.run_id)
        else:
            raise BadInput(f"plot_metrics: {run!r} is not a run id, a Run or a search_runs DataFrame")
    return ids


def plot_metrics(runs: Any, key: str, *, ax: Any = None) -> Any:
    """Draw the history of metric ``key`` (value by step) for each run; returns the matplotlib Figure.

    In a notebook the figure shows inline. Runs without the metric are listed in the legend
    as "(no data)" rather than silently dropped.
    """
    if not isinstance(key, str) or not key:
        raise BadInput(f"plot_metrics: key must be a metric name, got {key!r}")
    ids = _run_ids(runs)
    if not ids:
        raise BadInput("plot_metrics: no runs given")
    import matplotlib.pyplot as plt
    import mlflow

    client = mlflow.MlflowClient()
    if ax is None:
        figure, ax = plt.subplots(figsize=(6, 3.5))
    else:
        figure = ax.figure
    for run_id in ids:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        label = client.get_run(run_id).info.run_name or run_id[:8]
        if history:
            ax.plot([m.step for m in history], [m.value for m in history], marker="." if len(history) < 50 else None,
                    label=label)
        else:
            ax.plot([], [], label=f"{label} (no data)")
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.legend(fontsize="small")
    figure.tight_layout()
    plt.close(figure)  # shown once, by the notebook's display of the returned figure
    return figure
