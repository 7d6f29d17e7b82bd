"""Fixtures for the REST server tests: models logged through the Delta store, servers in subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.conftest import tracking_to

FEATURES = [f"f{i}" for i in range(20)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_server(model: str, root: str, log_dir: Path, *extra: str, timeout: float = 120) -> Server:
    """``python -m sparkml_ops.cli models serve`` on a free 127.0.0.1 port; returns once /ping answers."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    cmd = [sys.executable, "-m", "sparkml_ops.cli", "models", "serve", "-m", model, "--root", root,
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra]
    with log.open("wb") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ))
    server = Server(proc, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url + "/ping", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"server did not answer /ping within {timeout}s:\n{server.output()}")


def training_frame(rows: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    return frame, (frame["f0"] + frame["f1"] - frame["f2"] > 0).astype(int)


def log_lr(name: str = "model"):
    """Log a LogisticRegression on 20 double features (with an input example); returns ModelInfo."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    frame, target = training_frame()
    model = LogisticRegression().fit(frame, target)
    return mlflow.sklearn.log_model(model, name=name, input_example=frame.head(2),
                                    pip_requirements=mlflow.sklearn.get_default_pip_requirements())


def flush_store() -> None:
    """Commit buffered rows so a server process opening the same root sees the model."""
    from mlflow.tracking import MlflowClient

    MlflowClient()._tracking_client.store.flush()


@pytest.fixture(scope="module")
def module_root(tmp_path_factory):
    """A tracking root shared by one test module (same steps as the ``tracking_uri`` fixture)."""
    with tracking_to(tmp_path_factory.mktemp("serving") / "lake") as uri:
        yield uri


@pytest.fixture(scope="module")
def lr_served(module_root, tmp_path_factory):
    """(server, model_info, pyfunc model) for one LR model served by ``models:/<model_id>``."""
    import mlflow

    with mlflow.start_run():
        info = log_lr()
    flush_store()
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    server = start_server(info.model_uri, module_root, tmp_path_factory.mktemp("logs"),
                          "--max-body-bytes", str(256 * 1024))
    yield server, info, pyfunc
    assert server.stop() == 0, server.output()
