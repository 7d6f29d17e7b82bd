"""spark-submit arguments that run Python from a packed env (no Spark import needed)."""

from __future__ import annotations

import re
import sys
from typing import Literal

from sparkml_ops.envs.build import PackedEnv, unpacked_root
from sparkml_ops.errors import BadInput

_ALIAS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise BadInput(f"archive alias {alias!r} must be a plain directory name (letters, digits, '_', '.', '-')")
    return alias


def is_local_master(master: str | None) -> bool:
    """True for ``local``, ``local[N]``, ``local[*]``, ``local[N,F]`` (executors share the driver's machine)."""
    return master is not None and (master == "local" or master.startswith("local["))


def spark_conf(env: PackedEnv, alias: str = "environment", *, master: str | None = None) -> dict[str, str]:
    """Spark settings that ship ``env`` to executors and run their Python from it.

    With a ``local`` master the Python workers do not run in the directory Spark unpacks
    archives into, so they get the absolute path of the env's local unpacked copy instead
    (nothing to ship). ``spark.archives`` is read when the SparkContext starts: set these
    before it does.
    """
    _check_alias(alias)
    if is_local_master(master):
        return {"spark.pyspark.python": str(unpacked_root(env) / env.python)}
    return {"spark.archives": f"{env.archive}#{alias}", "spark.pyspark.python": f"./{alias}/{env.python}"}


def spark_submit_args(env: PackedEnv, alias: str = "environment", *,
                      master: str | None = None,
                      deploy_mode: Literal["client", "cluster"] = "client",
                      driver_python: str | None = None) -> list[str]:
    """``--archives ENV#alias`` and ``spark.pyspark.python=./alias/bin/python`` (+ the driver's Python).

    In client mode the driver runs on the submitting machine, where ``./alias`` does not
    exist, so ``spark.pyspark.driver.python`` is set to ``driver_python`` (default: this
    interpreter). In cluster mode (YARN, Kubernetes) the driver's container unpacks the
    archive too and uses ``spark.pyspark.python``. With a ``local`` master see :func:`spark_conf`.
    """
    if deploy_mode not in ("client", "cluster"):
        raise BadInput(f"deploy_mode {deploy_mode!r} must be 'client' or 'cluster'")
    if deploy_mode == "cluster" and is_local_master(master):
        raise BadInput(f"deploy_mode 'cluster' cannot be used with master {master!r}")
    conf = spark_conf(env, alias, master=master)
    args = []
    if "spark.archives" in conf:
        args += ["--archives", conf["spark.archives"]]
    args += ["--conf", f"spark.pyspark.python={conf['spark.pyspark.python']}"]
    if deploy_mode == "client":
        args += ["--conf", f"spark.pyspark.driver.python={driver_python or sys.executable}"]
    return args
