"""Where the running notebook lives, and the source tags a run made from it carries.

The kernel is told its notebook's path in different ways by different front-ends; when none
of them says, the tags say ``unknown`` instead of guessing (say, from ``sys.argv``, which in
a kernel names ``ipykernel_launcher``).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkml_ops import config

UNKNOWN = "unknown"

# MLflow's own tag keys (mlflow.utils.mlflow_tags), spelled out so computing tags needs no mlflow import.
SOURCE_TYPE = "mlflow.source.type"
SOURCE_NAME = "mlflow.source.name"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
GIT_REPO_URL = "mlflow.source.git.repoURL"
PATH_FROM = "sparkml_ops.notebook.path_from"
PYTHON_VERSION = "sparkml_ops.python_version"
KERNEL_VERSION = "sparkml_ops.kernel_version"
SPARK_APP_ID = "sparkml_ops.spark.app_id"
SPARK_MASTER = "sparkml_ops.spark.master"


class NotebookWarning(UserWarning):
    """Something about the notebook could not be done; the run goes on and loses nothing."""


@dataclass(frozen=True)
class NotebookPath:
    """The notebook's path (absolute when it exists on this machine) and which signal gave it."""

    path: str | None
    found_by: str

    @property
    def name(self) -> str:
        return self.path or UNKNOWN


def find_notebook_path(user_ns: dict[str, Any] | None = None) -> NotebookPath:
    """The running notebook's path, from the signals front-ends give a kernel, in this order:

    the ``notebook_path`` setting (``$SPARKML_OPS_NOTEBOOK_PATH``: set it for nbclient or
    papermill runs, :func:`sparkml_ops.notebook.run_notebook` does), VS Code's
    ``__vsc_ipynb_file__``, JupyterLab / Notebook 7's ``$JPY_SESSION_NAME``.
    """
    setting = str(config.resolve("notebook_path") or "")
    if setting:
        return NotebookPath(_absolute(setting), "setting")
    vscode = (user_ns or {}).get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and vscode:
        return NotebookPath(_absolute(vscode), "vscode")
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session:
        return NotebookPath(_absolute(session), "JPY_SESSION_NAME")
    return NotebookPath(None, UNKNOWN)


def _absolute(path: str) -> str:
    """An absolute path when the file exists relative to the kernel's directory; as given otherwise
    (JPY_SESSION_NAME may be relative to a server root this kernel cannot see)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return str(candidate)
    if candidate.exists():
        return str(candidate.resolve())
    return path


def git_tags(directory: Path) -> dict[str, str]:
    """Commit, branch and remote of the repository holding ``directory``; ``unknown`` when there is
    none (MLflow's own git context would otherwise tag the kernel launcher's repository)."""
    tags = {GIT_COMMIT: UNKNOWN, GIT_BRANCH: UNKNOWN, GIT_REPO_URL: UNKNOWN}
    if shutil.which("git") is None:
        warnings.warn("git is not installed in this kernel's environment: the run's git tags say 'unknown'",
                      NotebookWarning, stacklevel=2)
        return tags
    from mlflow.utils import git_utils  # GitPython underneath: slow to import, only when asked

    where = str(directory)
    for key, probe in ((GIT_COMMIT, git_utils.get_git_commit), (GIT_BRANCH, git_utils.get_git_branch),
                       (GIT_REPO_URL, git_utils.get_git_repo_url)):
        value = probe(where)
        if value:
            tags[key] = value
    return tags


def static_tags(notebook: NotebookPath) -> dict[str, str]:
    """Tags that stay the same for the kernel's lifetime: source, git, Python and kernel versions."""
    tags = {
        SOURCE_TYPE: "NOTEBOOK",
        SOURCE_NAME: notebook.name,
        PATH_FROM: notebook.found_by,
        PYTHON_VERSION: platform.python_version(),
        KERNEL_VERSION: _kernel_version(),
    }
    directory = Path(notebook.path).parent if notebook.path and Path(notebook.path).is_absolute() else Path.cwd()
    tags.update(git_tags(directory))
    return tags


def _kernel_version() -> str:
    kernel = sys.modules.get("ipykernel")
    version = getattr(kernel, "__version__", None)
    if version:
        return f"ipykernel {version}"
    ipython = sys.modules.get("IPython")
    return f"IPython {getattr(ipython, '__version__', UNKNOWN)}"


def spark_tags() -> dict[str, str]:
    """Application id and master of the Spark context running in this process, if any (never starts one)."""
    if "pyspark" not in sys.modules:
        return {}
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:
        return {}
    return {SPARK_APP_ID: str(context.applicationId), SPARK_MASTER: str(context.master)}
