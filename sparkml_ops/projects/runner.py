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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sparkml_ops.envs import is_local_master
from sparkml_ops.errors import BadInput
from sparkml_ops.projects import tags as T
from sparkml_ops.projects.command import build_launch, check_master, tracking_env
from sparkml_ops.projects.environment import ProjectEnv, prepare_env
from sparkml_ops.projects.mlproject import load_project
from sparkml_ops.projects.pins import PIN_ENV
from sparkml_ops.projects.source import Source, fetch
from sparkml_ops.projects.submitted import SubmittedRun

DEFAULT_MASTER = "local[*]"


def _experiment_id(client, experiment_name: str | None, experiment_id: str | None) -> str:
    if experiment_id is not None:
        return str(client.get_experiment(str(experiment_id)).experiment_id)
    name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        found = client.get_experiment_by_name(name)
        return found.experiment_id if found else client.create_experiment(name)
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
        version: str | None = None, master: str | None = None,
        deploy_mode: Literal["client", "cluster"] = "client",
        spark_conf: Mapping[str, str] | None = None, spark_args: Sequence[str] = (),
        env_manager: str | None = None, experiment_name: str | None = None, experiment_id: str | None = None,
        run_name: str | None = None, tracking_uri: str | None = None, synchronous: bool = True,
        env_cache_dir: Path | None = None, progress: bool = True, stream_output: bool = True,
        pin_inputs: list[dict[str, Any]] | None = None, tags: Mapping[str, str] | None = None,
        keep_workdir: bool = False) -> SubmittedRun:
    """Run an MLflow project as a spark-submit job and track it; returns a :class:`SubmittedRun`.

    ``uri``: a local directory or git URL, optionally ``#subdirectory``; ``version``: commit,
    tag or branch (git only). ``master`` defaults to ``local[*]``. ``env_manager``:
    ``virtualenv`` (default; packed env), ``local`` (this interpreter) or ``conda``.
    ``synchronous=True`` waits for the job (Ctrl-C cancels it: KILLED).
    """
    import mlflow
    from mlflow import MlflowClient

    master = check_master(master or DEFAULT_MASTER)
    if deploy_mode not in ("client", "cluster"):
        raise BadInput(f"deploy_mode {deploy_mode!r} must be 'client' or 'cluster'")
    if deploy_mode == "cluster" and is_local_master(master):
        raise BadInput(f"deploy_mode 'cluster' needs a cluster master, not {master!r}")
    if deploy_mode == "cluster" and master.startswith("spark://"):
        raise BadInput(f"Spark standalone ({master}) cannot run Python applications in cluster deploy mode; "
                       "use client mode there, or YARN/Kubernetes for cluster mode")
    if env_manager == "uv":
        env_manager = "virtualenv"  # MLflow's uv manager builds the same kind of env
    params = {str(k): v for k, v in (parameters or {}).items()}
    workdir = Path(tempfile.mkdtemp(prefix="sparkml_ops-run-"))
    try:
        source = fetch(uri, version, workdir)
        project = load_project(source.directory)
        entry = project.entry_point(entry_point)
        declared, extra = entry.resolve(params, base_dir=Path.cwd())
        command = entry.command_line(declared, extra)
        env = prepare_env(project, env_manager, cache_dir=env_cache_dir, progress=progress)
        for warning in env.warnings:
            print(f"sparkml_ops: warning: {warning}", file=sys.stderr)

        tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        client = MlflowClient(tracking_uri)
        exp_id = _experiment_id(client, experiment_name, experiment_id)
        all_tags = _run_tags(source, version, entry.name, env, master, deploy_mode, command, tags or {})
        all_tags[T.PROJECT_PARAMS] = json.dumps({**declared, **extra})
        if pin_inputs:
            all_tags[T.PINNED_INPUTS] = json.dumps(pin_inputs)[:4900]
        created = client.create_run(exp_id, tags=all_tags, run_name=run_name or f"{project.name}:{entry.name}")
        run_id = created.info.run_id
        from mlflow.entities import Param

        client.log_batch(run_id, params=[Param(k, v) for k, v in {**declared, **extra}.items()])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    job_env = tracking_env(run_id, tracking_uri, exp_id,
                           {PIN_ENV: json.dumps(pin_inputs)} if pin_inputs else {})
    try:
        launch = build_launch(command, project_dir=source.directory, project_name=project.name, env=env,
                              master=master, deploy_mode=deploy_mode, job_env=job_env,
                              spark_conf=dict(spark_conf or {}), spark_args=list(spark_args), workdir=workdir,
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
