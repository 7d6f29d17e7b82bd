"""One real ``sparkml-ops server`` per test module, over a fresh Delta root."""

from __future__ import annotations

import pytest

from tests.server.serverproc import sparkml_server


@pytest.fixture(scope="module")
def server_root(tmp_path_factory):
    return tmp_path_factory.mktemp("server") / "lake"


@pytest.fixture(scope="module")
def server(server_root, tmp_path_factory):
    with sparkml_server(server_root, tmp_path_factory.mktemp("logs") / "server.log") as running:
        yield running


@pytest.fixture
def client(server, monkeypatch):
    """MLflow's stock client pointed at the server over HTTP."""
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    try:
        yield MlflowClient(server.url)
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(previous)
