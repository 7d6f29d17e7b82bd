"""Real project runs: spark-submit on local[...], tracking, failure, cancel, MLflow backend plugin."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from sparkml_ops.envs import build_packed_env
from sparkml_ops.projects import EnvOptions, SparkOptions, run

QUIET = {"spark.ui.enabled": "false"}


def processes_of_run(run_id: str) -> list[int]:
    """Pids whose environment carries this run's id (spark-submit, JVM, driver, Python workers)."""
    marker = f"MLFLOW_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def live_members_of_group(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are alive (zombies awaiting their reaper do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def test_run_on_local_master_from_packed_env(tracking_uri, spark_project: Path, env_cache: Path):
    submitted = run(str(spark_project), "main", {"alpha": 2}, spark=SparkOptions(master="local[2]", conf=QUIET),
                    env=EnvOptions(cache_dir=env_cache), stream_output=False)
    assert submitted.get_status() == "FINISHED"
    client = MlflowClient()
    result = client.get_run(submitted.run_id)
    assert result.info.status == "FINISHED"
    assert result.data.metrics == {"total": 90.0}  # logged by the job into the run we created
    assert result.data.params == {"alpha": "2", "n": "10"}
    tags = result.data.tags
    env = build_packed_env(["cloudpickle"], python_version="3.11", cache_dir=env_cache, progress=False)
    assert tags["sparkml_ops.env.hash"] == env.env_hash
    env_python = str(env_cache / env.env_hash / "bin" / "python")
    assert tags["driver_python"] == env_python  # the driver ran the packed env's interpreter
    assert tags["executor_python"] == env_python  # and so did every executor's Python worker
    assert tags["sparkml_ops.spark.master"] == "local[2]"
    assert tags["sparkml_ops.spark.app_id"].startswith("local-")
    assert tags["mlflow.source.name"] == str(spark_project) and tags["mlflow.project.backend"] == "spark-submit"
    assert tags["sparkml_ops.exit_code"] == "0"
    log = Path(mlflow.artifacts.download_artifacts(run_id=submitted.run_id, artifact_path="driver.log"))
    assert "SparkContext" in log.read_text()

    failed = run(str(spark_project), "fail", spark=SparkOptions(master="local[1]", conf=QUIET),
                 env=EnvOptions(cache_dir=env_cache), stream_output=False)
    assert not failed.wait() and failed.get_status() == "FAILED"
    bad = client.get_run(failed.run_id)
    assert bad.info.status == "FAILED" and bad.data.tags["sparkml_ops.exit_code"] == "1"
    assert bad.data.tags["sparkml_ops.env.cache_hit"] == "true"  # second run: the env came from the cache
    assert bad.data.metrics == {"before_failure": 1.0}
    log = Path(mlflow.artifacts.download_artifacts(run_id=failed.run_id, artifact_path="driver.log"))
    assert "RuntimeError: project failed on purpose: xyzzy" in log.read_text()


def test_cancel_kills_the_job_and_every_process(tracking_uri, spark_project: Path, env_cache: Path):
    submitted = run(str(spark_project), "sleep", spark=SparkOptions(master="local[2]", conf=QUIET),
                    env=EnvOptions(cache_dir=env_cache), synchronous=False, stream_output=False)
    app_file = submitted._workdir / "app.json"
    deadline = time.monotonic() + 120
    while not app_file.exists() and time.monotonic() < deadline:
        assert submitted.get_status() == "RUNNING", submitted.driver_log.read_text()[-2000:]
        time.sleep(0.2)
    assert app_file.exists(), "the job never started its SparkContext"
    while len(processes_of_run(submitted.run_id)) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)  # spark-submit's shell, the JVM, the Python driver, then the Python workers
    assert len(processes_of_run(submitted.run_id)) >= 4
    pgid = submitted.pid
    submitted.cancel()
    assert submitted.get_status() == "KILLED"
    assert MlflowClient().get_run(submitted.run_id).info.status == "KILLED"
    assert processes_of_run(submitted.run_id) == []
    assert live_members_of_group(pgid) == []


def test_mlflow_projects_run_with_spark_submit_backend(tracking_uri, spark_project: Path):
    """MLflow's own runner finds the plugin; a non-Python command runs as a plain process."""
    submitted = mlflow.projects.run(str(spark_project), "shell", parameters={"alpha": 0.5}, backend="spark-submit",
                                    backend_config={"master": "local[1]", "stream_output": False},
                                    env_manager="local", synchronous=True)
    result = MlflowClient().get_run(submitted.run_id)
    assert result.info.status == "FINISHED" and result.data.metrics == {"alpha": 0.5}
    assert result.data.tags["mlflow.project.backend"] == "spark-submit"
    assert result.data.tags["mlflow.project.env"] == "local"
    log = Path(mlflow.artifacts.download_artifacts(run_id=submitted.run_id, artifact_path="driver.log"))
    assert Path(log.read_text().strip()).parent == Path(sys.executable).parent  # `python` is this venv's
    with pytest.raises(mlflow.exceptions.ExecutionException):  # a failed job fails MLflow's synchronous run
        mlflow.projects.run(str(spark_project), "fail", backend="spark-submit", env_manager="local",
                            backend_config={"master": "local[1]", "stream_output": False, "conf": QUIET})
