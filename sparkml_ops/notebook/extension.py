"""``%load_ext sparkml_ops``: notebook logging in the running IPython shell."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(shell: Any) -> None:
    """Activate notebook logging in ``shell`` (any IPython shell; capture of outputs needs ipykernel).

    ``mlflow`` is imported first, before anything of ours that imports it (``sparkml_ops.errors``):
    its import loads our run-context provider, which must find our modules importable.
    """
    import mlflow  # noqa: F401

    from sparkml_ops.notebook import session

    session.activate(shell, mlflow_ready=True)  # also registers the %sparkml_ops magic


def unload_ipython_extension(shell: Any) -> None:
    from sparkml_ops.notebook import session

    session.deactivate()
