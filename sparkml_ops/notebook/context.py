"""MLflow run-context provider (entry point ``mlflow.run_context_provider``).

MLflow instantiates it while ``mlflow`` is being imported, in every process. Outside an
IPython kernel it costs two dictionary look-ups and does nothing — except on a Spark
executor started from a notebook, where ``SPARKML_OPS_NOTEBOOK_TAGS`` carries the
notebook's tags. Inside a kernel it activates the notebook session (capture, defaults), so
``import mlflow`` alone is enough; ``%load_ext sparkml_ops`` does the same earlier.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from mlflow.tracking.context.abstract_context import RunContextProvider

from sparkml_ops.notebook.spark_env import TAGS_ENV


def kernel_shell() -> Any | None:
    """The running IPython kernel's shell, or None (plain Python, terminal IPython, a Spark worker)."""
    if "ipykernel" not in sys.modules:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


class NotebookRunContext(RunContextProvider):
    """Tags runs with the notebook they come from; activates notebook logging inside a kernel."""

    def __init__(self) -> None:
        self._executor_tags = os.environ.get(TAGS_ENV)
        shell = kernel_shell()
        self._in_kernel = shell is not None
        self._waiting = False
        if shell is not None:
            self._activate(shell)

    def _activate(self, shell: Any) -> bool:
        """Start notebook logging; when our own modules are mid-import, retry at the next chance."""
        try:
            from sparkml_ops.notebook import session

            session.activate(shell, mlflow_ready=False)
        except ImportError:
            # e.g. `import sparkml_ops.sql` as a notebook's first line: sparkml_ops.errors imports mlflow,
            # which loads this provider while sparkml_ops.errors is still half-initialised
            if not self._waiting:
                self._waiting = True
                shell.events.register("post_run_cell", self._retry)
            return False
        if self._waiting:
            self._waiting = False
            shell.events.unregister("post_run_cell", self._retry)
        return True

    def _retry(self, result: Any = None) -> None:
        shell = kernel_shell()
        if shell is not None:
            self._activate(shell)

    def in_context(self) -> bool:
        if self._in_kernel:
            from sparkml_ops.notebook import session

            if session.current() is None and self._waiting:
                self._retry()
            return session.current() is not None
        return bool(self._executor_tags)

    def tags(self) -> dict[str, str]:
        if self._in_kernel:
            from sparkml_ops.notebook import session

            active = session.current()
            return active.tags() if active is not None else {}
        try:
            value = json.loads(self._executor_tags or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
