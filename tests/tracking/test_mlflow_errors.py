"""Errors by layer: ours know nothing of MLflow; the stores' edge gives MLflow its codes."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sparkml_ops.errors import BadInput, CommitConflict, NotFound, SparkmlOpsError, StorageError
from sparkml_ops.tracking.mlflow_errors import to_mlflow


def test_our_errors_are_not_mlflow_errors_and_import_no_mlflow():
    assert not issubclass(SparkmlOpsError, MlflowException)
    done = subprocess.run([sys.executable, "-c", "import sys, sparkml_ops.errors, sparkml_ops.config; "
                           "print(sorted(m for m in sys.modules if m.startswith('mlflow')))"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize(("error", "code", "builtin"), [
    (BadInput("x must be > 0, got -1"), "INVALID_PARAMETER_VALUE", ValueError),
    (NotFound("run 'r' does not exist"), "RESOURCE_DOES_NOT_EXIST", LookupError),
    (StorageError("table runs is unreadable"), "INTERNAL_ERROR", OSError),
    (CommitConflict("another writer won"), "INTERNAL_ERROR", Exception),
])
def test_translation_keeps_our_type_and_adds_mlflows_code(error, code, builtin):
    translated = to_mlflow(error)
    assert isinstance(translated, MlflowException) and isinstance(translated, type(error))
    assert isinstance(translated, builtin)
    assert translated.error_code == code and translated.message == error.message == str(translated)
    again = pickle.loads(pickle.dumps(translated))
    assert type(again) is type(translated) and again.error_code == code and again.message == error.message
    assert to_mlflow(translated) is translated
    plain = ValueError("not ours")
    assert to_mlflow(plain) is plain


def test_store_calls_raise_mlflow_errors_of_our_types(tracking_uri):
    client = MlflowClient(tracking_uri)
    with pytest.raises(NotFound) as missing:
        client.get_run("0" * 32)
    assert isinstance(missing.value, MlflowException) and missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad:
        client.search_runs(["0"], filter_string="metrics.loss <")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"


def test_model_resolution_reports_unreachable_servers_as_they_are(monkeypatch):
    """A network failure is not "no such run" (models/resolve.py catches only what it means)."""
    import mlflow

    from sparkml_ops.models.resolve import resolve_model

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(MlflowException) as failure:
            resolve_model("0" * 32)
    finally:
        mlflow.set_tracking_uri(previous)
    assert not isinstance(failure.value, NotFound)
    assert "no such run" not in failure.value.message and str(port) in failure.value.message
