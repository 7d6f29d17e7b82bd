"""Turn an entry point's command into a process: spark-submit for Python, a shell otherwise.

A command that runs ``python FILE`` or ``python -m MODULE`` is submitted with the installed
pyspark's ``bin/spark-submit``, through :mod:`._bootstrap`, with the tracking variables set
for the driver (process environment, or ``spark.yarn.appMasterEnv.*`` /
``spark.kubernetes.driverEnv.*`` in cluster mode) and the executors (``spark.executorEnv.*``).
Anything else (``bash run.sh``, pipes) runs as a plain process with the env's ``bin`` first
on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sparkml_ops.envs import is_local_master, spark_submit_args
from sparkml_ops.envs.package import package_zip
from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.projects.environment import ProjectEnv

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
_SHELL_OPERATORS = {"&&", "||", ";", "|", ">", "<", ">>", "&", ";;", "<<", "|&", "(", ")"}
_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|spark://.+|yarn|k8s://.+)$")


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    spark: bool  # True when submitted through spark-submit


def spark_submit_path() -> Path:
    """``bin/spark-submit`` of the installed pyspark (found from ``pyspark.__file__``; no JVM started)."""
    import pyspark

    path = Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"
    if not path.is_file():
        raise NotFound(f"spark-submit not found at {path}; reinstall pyspark")
    return path


def check_master(master: str) -> str:
    if not isinstance(master, str) or not _MASTER.match(master):
        raise BadInput(f"Spark master {master!r} must be local, local[N], local[*], spark://HOST:PORT, yarn "
                       "or k8s://https://HOST:PORT")
    return master


def parse_python_command(command: str) -> tuple[str, str, list[str]] | None:
    """``("--script", FILE, args)`` / ``("--module", NAME, args)`` for a Python command, else None."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise BadInput(f"command {command!r} cannot be parsed: {exc}") from None
    if not tokens or any(t in _SHELL_OPERATORS for t in tokens):
        return None
    if not re.fullmatch(r"python(\d+(\.\d+)?)?", os.path.basename(tokens[0])):
        return None
    argv = shlex.split(command)
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "-m" and i + 1 < len(argv):
            return "--module", argv[i + 1], argv[i + 2:]
        if argv[i] == "-c" or argv[i] == "-":
            return None
        i += 2 if argv[i] in ("-W", "-X") else 1
    if i >= len(argv):
        return None
    return "--script", argv[i], argv[i + 1:]


def _zip_project(directory: Path, target: Path) -> Path:
    """The project's Python sources (not its data) as a ``--py-files`` zip."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*.py")):
            rel = path.relative_to(directory)
            if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
                archive.write(path, rel.as_posix())
    return target


def tracking_env(run_id: str, tracking_uri: str, experiment_id: str, extra: dict[str, str]) -> dict[str, str]:
    return {"MLFLOW_RUN_ID": run_id, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_EXPERIMENT_ID": experiment_id,
            **extra}


def build_launch(command: str, *, project_dir: Path, project_name: str, env: ProjectEnv, master: str,
                 deploy_mode: str, job_env: dict[str, str], spark_conf: dict[str, str], spark_args: list[str],
                 workdir: Path, app_name: str) -> Launch:
    """The process to start for ``command`` (see module docstring)."""
    base_env = dict(os.environ)
    base_env.update(job_env)
    python = parse_python_command(command)
    if python is None:
        bin_dir = str(Path(env.driver_python).parent)  # `python` in the command is the env's (or this one)
        base_env["PATH"] = bin_dir + os.pathsep + base_env.get("PATH", "")
        if env.packed is not None:
            base_env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
        base_env["PYSPARK_PYTHON"] = env.driver_python
        return Launch(["/bin/bash", "-c", command], base_env, project_dir, spark=False)

    kind, target, args = python
    local = is_local_master(master)
    cluster = deploy_mode == "cluster"
    argv = [str(spark_submit_path()), "--master", master, "--name", app_name]
    if cluster:
        argv += ["--deploy-mode", "cluster"]
    if env.packed is not None:
        argv += spark_submit_args(env.packed, master=master, deploy_mode="cluster" if cluster else "client",
                                  driver_python=env.driver_python)
    else:
        argv += ["--conf", f"spark.pyspark.python={env.driver_python}",
                 "--conf", f"spark.pyspark.driver.python={env.driver_python}"]
    for key, value in job_env.items():
        argv += ["--conf", f"spark.executorEnv.{key}={value}"]
        if master == "yarn":
            argv += ["--conf", f"spark.yarn.appMasterEnv.{key}={value}"]
        elif master.startswith("k8s://"):
            argv += ["--conf", f"spark.kubernetes.driverEnv.{key}={value}"]
    py_files = []
    if not local:  # executors (and a cluster-mode driver) import project modules from this zip
        py_files.append(str(_zip_project(project_dir, workdir / f"{project_name}-src.zip")))
    if env.packed is not None:  # a packed env has the project's requirements, not sparkml_ops (our UDFs need it)
        py_files.append(str(package_zip(Path(env.packed.archive).parent)))
    if py_files:
        argv += ["--py-files", ",".join(py_files)]
    for key, value in spark_conf.items():
        argv += ["--conf", f"{key}={value}"]
    argv += list(spark_args)
    if cluster and kind == "--script":  # the driver runs remotely: import the script from the shipped zip
        rel = Path(os.path.relpath(project_dir / target, project_dir))
        kind, target = "--module", ".".join(rel.with_suffix("").parts)
    elif kind == "--script":
        target = str((project_dir / target).resolve())
        if not Path(target).is_file():
            raise NotFound(f"entry script {target} does not exist in the project")
    argv += [str(BOOTSTRAP), kind, target, *args]
    if env.fallback_site and not cluster:
        base_env["SPARKML_OPS_FALLBACK_SITE"] = os.pathsep.join(env.fallback_site)
    if local:
        base_env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local job needs no network interface
    return Launch(argv, base_env, project_dir, spark=True)
