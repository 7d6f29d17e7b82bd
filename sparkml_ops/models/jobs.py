"""Launch the scoring jobs with ``spark-submit``: the model's env decided before Spark starts.

``prepare_job`` takes a job spec (:class:`~sparkml_ops.models.jobio.ScoreSpec`), resolves the
model and, for ``env="packed"``, builds (or finds in the cache) its packed env, then writes
the ``spark-submit`` command that hands the job the spec as one JSON argument: executors run
Python from the archive, the driver runs this interpreter (it holds sparkml_ops, delta-rs and
the tracking store), and sparkml_ops itself travels as a ``--py-files`` zip so the packed
env needs nothing but the model's own requirements. ``run_job`` starts it in its own process
group, so a caller (or a test) can stop the whole job with one signal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sparkml_ops.envs.package import package_zip
from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.models import environment
from sparkml_ops.models.jobio import JobKind, ScoreSpec

_SCRIPTS = {"batch": "batch_score.py", "stream": "stream_score.py"}
_MODULES = {"batch": "batch_job.py", "stream": "stream_job.py"}


@dataclass(frozen=True)
class Job:
    kind: JobKind
    command: list[str]
    env_vars: dict[str, str] = field(repr=False)
    env: Any = None  # sparkml_ops.envs.PackedEnv for env="packed"


def spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    home = Path(os.environ.get("SPARK_HOME") or _find_spark_home())
    if not (home / "bin" / "spark-submit").is_file():
        raise NotFound(f"spark-submit not found under SPARK_HOME {home}")
    return home


def job_script(kind: JobKind) -> Path:
    """``jobs/<kind>_score.py`` of a source checkout, else the same job inside the package."""
    package = Path(__file__).resolve().parent
    repo_script = package.parent.parent / "jobs" / _SCRIPTS[kind]
    return repo_script if repo_script.is_file() else package / _MODULES[kind]


def prepare_job(spec: ScoreSpec, *, master: str = "local[2]", progress: bool = True,
                conf: dict[str, str] | None = None) -> Job:
    """The ``spark-submit`` command (and environment) that runs the scoring job ``spec`` describes."""
    import mlflow

    from sparkml_ops.models.resolve import resolve_model

    kind, env, model, env_cache_dir = spec.kind, spec.env, spec.model, spec.env_cache
    environment.check_mode(env)
    if not master or not master.strip():
        raise BadInput("master must name a Spark master, e.g. local[2] or spark://host:7077")
    tracking_uri = spec.tracking_uri or mlflow.get_tracking_uri()
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master, "--name", f"sparkml-ops-score-{kind}",
           "--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.ui.showConsoleProgress=false",
           "--conf", "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS"]
    packed = None
    worker_python = sys.executable
    if env == "packed":
        from sparkml_ops.models.scoring import is_spark_model

        resolved = resolve_model(model)
        if is_spark_model(resolved):  # a Spark ML pipeline runs in the JVM: no Python env to pack
            print(f"[sparkml-ops] model {resolved.label} is a Spark ML pipeline; --env packed does not apply",
                  file=sys.stderr)
            env = "local"
    if env == "packed":
        from sparkml_ops.envs import spark_conf, spark_submit_args

        packed = environment.build_model_env(resolved, cache_dir=env_cache_dir, progress=progress)
        cmd += spark_submit_args(packed, master=master, driver_python=sys.executable)
        cmd += ["--py-files", str(package_zip(Path(packed.archive).parent))]
        worker_python = spark_conf(packed, master=master)["spark.pyspark.python"]
    else:
        cmd += ["--conf", f"spark.pyspark.python={sys.executable}",
                "--conf", f"spark.pyspark.driver.python={sys.executable}"]
    for key, value in (conf or {}).items():
        cmd += ["--conf", f"{key}={value}"]
    spec = replace(spec, env=env, tracking_uri=tracking_uri)
    cmd += [str(job_script(kind)), "--spec", spec.to_json()]
    env_vars = dict(os.environ)
    repo_conf = Path(__file__).resolve().parent.parent.parent / "conf"
    if "SPARK_CONF_DIR" not in env_vars and (repo_conf / "log4j2.properties").is_file():
        env_vars["SPARK_CONF_DIR"] = str(repo_conf)  # quiet logging + spark-defaults.conf of a checkout
    env_vars.update({"MLFLOW_TRACKING_URI": tracking_uri, "PYSPARK_PYTHON": worker_python,
                     "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_HOME": str(spark_home())})
    return Job(kind=kind, command=cmd, env_vars=env_vars, env=packed)


def start_job(job: Job, *, stdout: Any = None, stderr: Any = None) -> subprocess.Popen:
    """Start ``job`` in a new process group (``os.killpg(proc.pid, ...)`` stops all of it)."""
    if shutil.which(job.command[0]) is None and not Path(job.command[0]).is_file():
        raise NotFound(f"cannot run {job.command[0]}")
    return subprocess.Popen(job.command, env=job.env_vars, stdout=stdout, stderr=stderr, start_new_session=True)


def run_job(job: Job) -> int:
    """Run ``job`` to completion, its output going to ours; returns spark-submit's exit code."""
    proc = start_job(job, stdout=sys.stdout, stderr=sys.stderr)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        return proc.wait()
