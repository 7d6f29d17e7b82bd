"""spark_udf on a Spark Connect (sc://) session: the Connect server pyspark ships, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("allow_pickle")
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def connect_server(tmp_path):
    """``SparkConnectServer`` (spark-connect jar in pyspark's jars/) as our own process group."""
    from sparkml_ops.models.jobs import spark_home

    port = _free_port()
    log = tmp_path / "connect.log"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_HOME=str(spark_home()))
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", "local[2]",
           "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
           "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
           "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while "Spark Connect server started" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Connect server did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_spark_udf_on_a_connect_session(connect_server, lr_model, tracking_uri):
    from tests.models.conftest import features

    info, _, model, _ = lr_model
    import mlflow

    mlflow.flush_async_logging()
    result = subprocess.run([sys.executable, "-m", "tests.models.connect_client", connect_server, tracking_uri,
                             info.model_uri], cwd=REPO, capture_output=True, text=True, timeout=400,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["session"].startswith("pyspark.sql.connect")
    expected = model.predict(features(120)).tolist()
    assert out["udf"] == expected and out["transform"] == expected
    # the server's workers use the archive the client uploaded, not the client's local copy
    assert all(d.endswith(out["archive"]) and d != out["local"] for d in out["dirs"]), out["dirs"]
    assert np.array(out["udf"]).std() > 0


def test_compiled_model_on_a_connect_session(connect_server, lr_model, tracking_uri):
    """A compiled model is a plain SQL expression for the Connect server: no Python worker scores it."""
    from tests.models.conftest import features

    info, _, model, _ = lr_model
    import mlflow

    mlflow.flush_async_logging()
    result = subprocess.run([sys.executable, "-m", "tests.models.connect_client", connect_server, tracking_uri,
                             info.model_uri, "true"], cwd=REPO, capture_output=True, text=True, timeout=400,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["compiled"] and out["session"].startswith("pyspark.sql.connect")
    assert "ArrowEvalPython" not in out["plan"] and "Project" in out["plan"], out["plan"]
    expected = model.predict(features(120)).tolist()
    assert out["udf"] == expected and out["transform"] == expected
