"""The study's two plots on its parent run: optimisation history and parallel coordinates.

Each as an interactive HTML file with plotly.js embedded (opens offline: no CDN) and as a
PNG (Optuna's matplotlib backend), under the ``plots/`` artifact directory.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_plots(study: Any, metric: str, directory: Path) -> list[Path]:
    """Write the plots of ``study`` into ``directory``; returns the files written."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")  # no display on a driver
    import matplotlib.pyplot as plt
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    written: list[Path] = []
    plots: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "optimization_history": (vis.plot_optimization_history, vis_mpl.plot_optimization_history),
        "parallel_coordinate": (vis.plot_parallel_coordinate, vis_mpl.plot_parallel_coordinate),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
        for name, (interactive, static) in plots.items():
            figure = interactive(study, target_name=metric)
            html = directory / f"{name}.html"
            figure.write_html(str(html), include_plotlyjs=True, full_html=True)
            axes = static(study, target_name=metric)
            png = directory / f"{name}.png"
            axes.figure.savefig(png, dpi=100, bbox_inches="tight")
            plt.close(axes.figure)
            written += [html, png]
    return written


def log_plots(client: Any, parent_run_id: str, study: Any, metric: str) -> None:
    """Write the plots and log them to the parent run under ``plots/``."""
    with tempfile.TemporaryDirectory(prefix="sparkml_ops-plots-") as tmp:
        for path in write_plots(study, metric, Path(tmp)):
            client.log_artifact(parent_run_id, str(path), "plots")
