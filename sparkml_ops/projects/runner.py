"""``run()``: fetch a project, validate parameters, build its env, create the run, submit.

Order matters: parameter errors fail before anything is built or recorded; the run is
created before submission so the job logs into it (``MLFLOW_RUN_ID``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkml_ops.projects import tags as T
from sparkml_ops.projects.command import build_launch, tracking_env
from sparkml_ops.projects.environment import ProjectEnv, prepare_env
from sparkml_ops.projects.mlproject import load_project
from sparkml_ops.projects.options import EnvOptions, SparkOptions, TrackingOptions
from sparkml_ops.projects.pins import PIN_ENV
from sparkml_ops.projects.source import Source, fetch
from sparkml_ops.projects.submitted import SubmittedRun

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _experiment_id(client: MlflowClient, experiment_name: str | None, experiment_id: str | None) -> str:
    if experiment_id is not None:
        return str(client.get_experiment(str(experiment_id)).experiment_id)
    name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        found = client.get_experiment_by_name(name)
        return str(found.experiment_id) if found else client.create_experiment(name)
    from mlflow.tracking import fluent

    active = fluent._get_experiment_id()  # mlflow.set_experiment(), $MLFLOW_EXPERIMENT_ID, notebook context
    return str(active) if active is not None else "0"


def _run_tags(source: Source, version: str | None, entry_point: str, env: ProjectEnv, master: str,
              deploy_mode: str, command: str, extra: Mapping[str, str]) -> dict[str, str]:
    tags = {
        T.SOURCE_NAME: source.uri, T.SOURCE_TYPE: "PROJECT", T.PROJECT_URI: source.uri,
        T.ENTRY_POINT: entry_point, T.BACKEND: T.BACKEND_NAME, T.ENV_MANAGER: env.manager,
        T.ENV_HASH: env.env_hash, T.ENV_REQUIREMENTS: json.dumps(env.requirements)[:4900],
        T.MASTER: master, T.DEPLOY_MODE: deploy_mode, T.COMMAND: command[:4900],
        T.REPO_SUBDIRECTORY: source.repo_subdirectory, T.SOURCE_DIRTY: str(source.dirty).lower(),
    }
    if env.packed is not None:
        tags[T.ENV_CACHE_HIT] = str(env.packed.cache_hit).lower()
    if source.commit:
        tags[T.GIT_COMMIT] = source.commit
    if source.repo_url:
        tags[T.GIT_REPO_URL] = source.repo_url
    if version:
        tags[T.PROJECT_VERSION] = version
    tags.update({str(k): str(v) for k, v in extra.items()})
    return tags


def run(uri: str, entry_point: str = "main", parameters: Mapping[str, Any] | None = None, *,
        version: str | None = None, spark: SparkOptions = SparkOptions(), env: EnvOptions = EnvOptions(),
        tracking: TrackingOptions = TrackingOptions(), synchronous: bool = True, stream_output: bool = True,
        keep_workdir: bool = False) -> SubmittedRun:
    """Run an MLflow project as a tracked spark-submit job; returns a :class:`SubmittedRun`.

    Args:
        uri: a local directory or a git URL, optionally ``#subdirectory``.
        entry_point: an entry point of the MLproject file, or a ``.py``/``.sh`` file of the project.
        parameters: entry-point parameters; undeclared ones are passed as ``--key value``.
        version: commit, tag or branch (git URIs only).
        spark: where and how spark-submit runs the job (:class:`SparkOptions`).
        env: the job's Python environment (:class:`EnvOptions`).
        tracking: the run's experiment, name, tags and tracking URI (:class:`TrackingOptions`).
        synchronous: wait for the job (Ctrl-C cancels it: KILLED); else return at once.
        stream_output: copy the job's output to this process's stdout.
        keep_workdir: keep the job's scratch directory (command line, logs) after it ends.

    Raises:
        BadInput: a bad parameter, master/deploy-mode pair or project file — before anything is
            built or recorded. NotFound: a missing project, entry point or file.

    Example::

        from sparkml_ops.projects import EnvOptions, SparkOptions, run
        submitted = run("examples/workflow", "load", {"rows": 1000, "out": "/tmp/wf/data"},
                        spark=SparkOptions(master="local[2]"), env=EnvOptions(manager="local"))
        print(submitted.run_id, submitted.get_status())
    """
    import mlflow
    from mlflow import MlflowClient

    master = spark.checked_master()
    env_manager = "virtualenv" if env.manager == "uv" else env.manager  # MLflow's uv manager: the same env
    params = {str(k): v for k, v in (parameters or {}).items()}
    pin_inputs = [dict(p) for p in tracking.pin_inputs]
    workdir = Path(tempfile.mkdtemp(prefix="sparkml_ops-run-"))
    try:
        source = fetch(uri, version, workdir)
        project = load_project(source.directory)
        entry = project.entry_point(entry_point)
        declared, extra = entry.resolve(params, base_dir=Path.cwd())
        command = entry.command_line(declared, extra)
        project_env = prepare_env(project, env_manager, cache_dir=env.cache_dir, progress=env.progress)
        for warning in project_env.warnings:
            print(f"sparkml_ops: warning: {warning}", file=sys.stderr)

        tracking_uri = tracking.tracking_uri or mlflow.get_tracking_uri()
        client = MlflowClient(tracking_uri)
        exp_id = _experiment_id(client, tracking.experiment_name, tracking.experiment_id)
        all_tags = _run_tags(source, version, entry.name, project_env, master, spark.deploy_mode, command,
                             tracking.tags)
        all_tags[T.PROJECT_PARAMS] = json.dumps({**declared, **extra})
        if pin_inputs:
            all_tags[T.PINNED_INPUTS] = json.dumps(pin_inputs)[:4900]
        created = client.create_run(exp_id, tags=all_tags, run_name=tracking.run_name or f"{project.name}:{entry.name}")
        run_id = created.info.run_id
        from mlflow.entities import Param

        client.log_batch(run_id, params=[Param(k, v) for k, v in {**declared, **extra}.items()])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    job_env = tracking_env(run_id, tracking_uri, exp_id,
                           {PIN_ENV: json.dumps(pin_inputs)} if pin_inputs else {})
    try:
        launch = build_launch(command, project_dir=source.directory, project_name=project.name, env=project_env,
                              master=master, deploy_mode=spark.deploy_mode, job_env=job_env,
                              spark_conf=dict(spark.conf), spark_args=list(spark.args), workdir=workdir,
                              app_name=f"{project.name}:{entry.name} ({run_id[:8]})")
        launch.env["SPARKML_OPS_APP_INFO"] = str(workdir / "app.json")
        (workdir / "command.json").write_text(json.dumps(launch.argv))
        process = subprocess.Popen(launch.argv, cwd=launch.cwd, env=launch.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    except BaseException as exc:
        client.set_tag(run_id, T.PREFIX + "error", str(exc)[:4900])
        client.set_terminated(run_id, "FAILED")
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    submitted = SubmittedRun(run_id, process, client, workdir=workdir, tracking_uri=tracking_uri,
                             stream_output=stream_output, keep_workdir=keep_workdir, spark=launch.spark)
    if synchronous:
        submitted.wait()
    return submitted
