"""Fixtures for the tracking tests: MLflow's own FileStore as the reference implementation."""

from __future__ import annotations

import pytest


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    """MLflow's FileStore in a fresh directory: what our store must behave like."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.store.tracking.file_store import FileStore

    directory = tmp_path / "mlruns"
    return FileStore(str(directory), str(tmp_path / "mlruns-artifacts"))
