"""Notebook logging: runs know their notebook, and the notebook's state is logged with each run.

``%load_ext sparkml_ops`` (or just ``import mlflow`` inside an IPython kernel, through our
run-context provider) turns it on. Submodules are imported on first use: importing this
package imports neither mlflow, IPython nor nbconvert.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension", "snapshot", "plot_metrics", "run_notebook"]


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext sparkml_ops.notebook``: see :mod:`sparkml_ops.notebook.extension`."""
    from sparkml_ops.notebook.extension import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from sparkml_ops.notebook.extension import unload_ipython_extension as unload

    unload(shell)


def snapshot(run_id: str | None = None) -> Any:
    """Log ``notebook/notebook.ipynb`` and ``notebook/notebook.html`` of the cells run so far to ``run_id``
    (default: the active run; none → only built) and return the :class:`~.document.Snapshot`."""
    from sparkml_ops.errors import BadInput
    from sparkml_ops.notebook import session

    active = session.current()
    if active is None:
        raise BadInput("sparkml_ops.notebook.snapshot() needs an IPython kernel with notebook logging active "
                       "(%load_ext sparkml_ops, or import mlflow in the kernel)")
    return active.snapshot(run_id)


def plot_metrics(runs: Any, key: str, *, ax: Any = None) -> Any:
    """Metric ``key``'s history for each of ``runs`` as a matplotlib Figure (see :mod:`.plot`)."""
    from sparkml_ops.notebook.plot import plot_metrics as plot

    return plot(runs, key, ax=ax)


def run_notebook(path: str, **kwargs: Any) -> Any:
    """Execute a notebook with nbclient, telling the kernel its path (see :mod:`.runner`)."""
    from sparkml_ops.notebook.runner import run_notebook as run

    return run(path, **kwargs)
