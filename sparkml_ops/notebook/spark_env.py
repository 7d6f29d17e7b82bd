"""Spark sessions created in the notebook hand the tracking root and the notebook's tags to executors.

Before the notebook's first Spark session starts its JVM, ``PYSPARK_SUBMIT_ARGS`` (which
pyspark passes to spark-submit when it launches the JVM) gets ``spark.executorEnv.*``
settings: ``MLFLOW_TRACKING_URI``, the notebook experiment and
``SPARKML_OPS_NOTEBOOK_TAGS`` (JSON). On the executors, our run-context provider reads that
variable, so a run started in a task carries the notebook's source tags. Anything the user
put in ``PYSPARK_SUBMIT_ARGS`` is kept.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any

TAGS_ENV = "SPARKML_OPS_NOTEBOOK_TAGS"
SUBMIT_ARGS = "PYSPARK_SUBMIT_ARGS"
_SHELL_ARG = "pyspark-shell"

_state: dict[str, str | None] = {"user": None, "ours": None, "key": None}


def executor_env(session: Any) -> dict[str, str]:
    """The variables executors need to log like the notebook does."""
    env = {TAGS_ENV: json.dumps(session.static_tags(), sort_keys=True)}
    uri = _tracking_uri()
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    for name in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _tracking_uri() -> str | None:
    utils = sys.modules.get("mlflow.tracking._tracking_service.utils")
    if utils is not None and getattr(utils, "_tracking_uri", None):
        return str(utils._tracking_uri)
    return os.environ.get("MLFLOW_TRACKING_URI")


def jvm_running() -> bool:
    if "pyspark" not in sys.modules:
        return False
    from pyspark import SparkContext

    return SparkContext._gateway is not None


def refresh(session: Any) -> None:
    """Keep ``PYSPARK_SUBMIT_ARGS`` current until the notebook's JVM starts (called before each cell)."""
    if jvm_running():
        return
    current = os.environ.get(SUBMIT_ARGS)
    key = "\0".join((current or "", _tracking_uri() or "", os.environ.get("MLFLOW_EXPERIMENT_NAME", ""),
                      os.environ.get("MLFLOW_EXPERIMENT_ID", ""), str(id(session))))
    if key == _state["key"]:
        return  # nothing changed since the last cell (the common case: keep the per-cell cost tiny)
    if current != _state["ours"]:
        _state["user"] = current  # the user (re)set it: build on their value
    user = shlex.split(_state["user"] or _SHELL_ARG)
    if user and user[-1] == _SHELL_ARG:
        user = user[:-1]
    confs: list[str] = []
    for name, value in sorted(executor_env(session).items()):
        confs += ["--conf", f"spark.executorEnv.{name}={value}"]
    value = shlex.join(user + confs + [_SHELL_ARG])
    os.environ[SUBMIT_ARGS] = value
    _state["ours"] = value
    _state["key"] = "\0".join((value, *key.split("\0")[1:]))
