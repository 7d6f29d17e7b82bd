"""Notebook logging: runs know their notebook, and the notebook's state is logged with each run.

``%load_ext sparkml_ops`` (or just ``import mlflow`` inside an IPython kernel, through our
run-context provider) turns it on. Submodules are imported on first use: importing this
package imports neither mlflow, IPython nor nbconvert.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension", "snapshot", "plot_metrics", "run_notebook"]


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext sparkml_ops.notebook``: runs started in this kernel know their notebook and log its state.

    Args:
        shell: the IPython shell (IPython passes it).

    Raises:
        ImportError: ``mlflow`` cannot be imported in the kernel (it is imported first, so its
            run-context provider finds ours).

    Example: ``%load_ext sparkml_ops`` in a notebook cell (see :mod:`sparkml_ops.notebook.extension`).
    """
    from sparkml_ops.notebook.extension import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext sparkml_ops.notebook``: stop notebook logging; runs already logged keep their snapshots.

    Args:
        shell: the IPython shell (IPython passes it).

    Raises:
        Nothing: unloading twice is harmless.

    Example: ``%unload_ext sparkml_ops``.
    """
    from sparkml_ops.notebook.extension import unload_ipython_extension as unload

    unload(shell)


def snapshot(run_id: str | None = None) -> Any:
    """Log the notebook as run so far to a run: ``notebook/notebook.ipynb`` and ``notebook/notebook.html``.

    Args:
        run_id: the run (default: the active run; with none, the snapshot is only built).

    Returns the :class:`~.document.Snapshot` (its cells, outputs and the logged paths).

    Raises:
        BadInput: not in an IPython kernel with notebook logging active.

    Example: ``sparkml_ops.notebook.snapshot()`` in a cell, after ``mlflow.start_run()``.
    """
    from sparkml_ops.errors import BadInput
    from sparkml_ops.notebook import session

    active = session.current()
    if active is None:
        raise BadInput("sparkml_ops.notebook.snapshot() needs an IPython kernel with notebook logging active "
                       "(%load_ext sparkml_ops, or import mlflow in the kernel)")
    return active.snapshot(run_id)


def plot_metrics(runs: Any, key: str, *, ax: Any = None) -> Any:
    """Metric ``key``'s history for each of ``runs`` as one matplotlib Figure, for a quick look in a notebook.

    Args:
        runs: run ids, MLflow ``Run`` objects or a frame from ``mlflow.search_runs``.
        key: the metric.
        ax: a matplotlib Axes to draw on (default: a new Figure).

    Raises:
        BadInput: no runs, or a key that is not a metric name.

    Example: ``plot_metrics(mlflow.search_runs(max_results=5), "loss")``.
    """
    from sparkml_ops.notebook.plot import plot_metrics as plot

    return plot(runs, key, ax=ax)


def run_notebook(path: str, **kwargs: Any) -> Any:
    """Execute a notebook headless with nbclient, telling the kernel its path, so its runs link to it.

    Args:
        path: the ``.ipynb`` file.
        kwargs: ``kernel_name``, ``timeout`` (seconds per cell), ``allow_errors``, ``env`` (extra
            kernel environment) and ``output_path`` (where to write the executed notebook), as in
            :func:`sparkml_ops.notebook.runner.run_notebook`.

    Returns the executed notebook node.

    Raises:
        BadInput: no notebook file at ``path``.
        nbclient.exceptions.CellExecutionError: a cell failed and ``allow_errors`` is false (the
            notebook's run still ends FAILED with its snapshot logged).

    Example: ``run_notebook("train.ipynb", timeout=600, output_path="train.out.ipynb")``.
    """
    from sparkml_ops.notebook.runner import run_notebook as run

    return run(path, **kwargs)
