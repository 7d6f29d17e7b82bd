"""A project on a real Spark standalone cluster (master + worker on 127.0.0.1, started here)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sparkml_ops.projects import EnvOptions, SparkOptions, run
from sparkml_ops.projects.command import spark_submit_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    spark_class = spark_submit_path().with_name("spark-class")
    with open(log, "wb") as out:
        return subprocess.Popen([str(spark_class), *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture
def standalone(tmp_path: Path):
    """``spark://127.0.0.1:PORT`` with one 1-core worker; both are stopped (whole process groups) after."""
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_MASTER_HOST="127.0.0.1",
               SPARK_LOG_DIR=str(tmp_path), SPARK_WORKER_DIR=str(tmp_path / "work"))
    master = start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(ui)], tmp_path / "master.log", env)
    worker = start(["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                    "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui),
                    "--work-dir", str(tmp_path / "work")], tmp_path / "worker.log", env)
    try:
        deadline = time.monotonic() + 180
        while alive_workers(ui) < 1:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            assert master.poll() is None and worker.poll() is None, "the master or worker exited"
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}", tmp_path / "work"
    finally:
        for proc in (worker, master):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in (worker, master):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_project_on_standalone_cluster_ships_the_packed_env(tracking_uri, spark_project: Path, env_cache: Path,
                                                           standalone, monkeypatch):
    master, work_dir = standalone
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")  # the driver listens on loopback only
    spark = SparkOptions(master=master, conf={"spark.ui.enabled": "false", "spark.executor.memory": "512m"})
    submitted = run(str(spark_project), "main", {"alpha": 1, "n": 5}, spark=spark, env=EnvOptions(cache_dir=env_cache),
                    stream_output=False)
    result = MlflowClient().get_run(submitted.run_id)
    assert result.info.status == "FINISHED", submitted.driver_log
    assert result.data.metrics == {"total": 10.0}
    tags = result.data.tags
    assert tags["sparkml_ops.spark.master"] == master
    app_id = tags["sparkml_ops.spark.app_id"]
    assert app_id.startswith("app-")
    # executors ran Python from the archive Spark unpacked into their working directory
    executor_python = tags["executor_python"]
    assert executor_python.startswith(str(work_dir / app_id))
    assert executor_python.endswith("/environment/bin/python")
    env_hash = tags["sparkml_ops.env.hash"]
    assert tags["driver_python"] == str(env_cache / env_hash / "bin" / "python")
