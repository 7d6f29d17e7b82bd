"""``sparkml-ops gc``: deleting runs and models, then gc, reclaims their chunks and only theirs."""

from __future__ import annotations

import json

import mlflow
import pytest

from sparkml_ops.lake.blobs import BlobStore
from sparkml_ops.tracking.artifact_uri import parse_artifact_uri
from tests.artifacts.helpers import random_bytes, write
from tests.cli_run import run_cli


def _gc_cli(argv: list[str], capsys) -> dict:
    assert run_cli(*argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_gc_after_deleting_a_run_and_a_model(tracking_uri, root, tmp_path, capsys):
    shared = write(tmp_path / "shared.bin", random_bytes(300_000, seed=51))
    own_a = write(tmp_path / "own_a.bin", random_bytes(200_000, seed=52))
    own_b = write(tmp_path / "own_b.bin", random_bytes(100_000, seed=53))
    model_bytes = write(tmp_path / "model" / "weights.bin", random_bytes(150_000, seed=54))
    with mlflow.start_run() as run_a:
        mlflow.log_artifact(str(shared))
        mlflow.log_artifact(str(own_a))
    with mlflow.start_run() as run_b:
        mlflow.log_artifact(str(shared))
        mlflow.log_artifact(str(own_b))
        model = mlflow.initialize_logged_model(name="m")
        mlflow.MlflowClient().log_model_artifacts(model.model_id, str(model_bytes.parent))
    blobs = BlobStore.open(parse_artifact_uri(run_a.info.artifact_uri).location)
    before = blobs.usage()
    assert before["chunk_bytes"] == 750_000

    mlflow.delete_run(run_a.info.run_id)
    mlflow.MlflowClient().delete_logged_model(model.model_id)
    report = _gc_cli(["gc", "--root", str(root), "--wait-seconds", "5"], capsys)
    assert report["deleted_runs"] == 1 and report["deleted_models"] == 1
    assert report["artifact_entries_removed"] == 3
    assert report["reclaimed_bytes"] == 350_000  # own_a + the model; 'shared' is still used by run b
    after = blobs.usage()
    assert after["chunk_bytes"] == 400_000 and after["physical_bytes"] < before["physical_bytes"]

    client = mlflow.MlflowClient()
    assert client.list_artifacts(run_a.info.run_id) == []
    got = mlflow.artifacts.download_artifacts(run_id=run_b.info.run_id, dst_path=str(tmp_path / "b"))
    assert (tmp_path / "b" / "shared.bin").read_bytes() == shared.read_bytes()
    assert (tmp_path / "b" / "own_b.bin").read_bytes() == own_b.read_bytes()
    assert got == str(tmp_path / "b")

    again = _gc_cli(["gc", "--root", str(root), "--wait-seconds", "5"], capsys)
    assert again["artifact_entries_removed"] == 0 and again["swept_chunks"] == 0


def test_gc_rejects_a_short_wait(tracking_uri, root, capsys):
    assert run_cli("gc", "--root", str(root), "--wait-seconds", "1") == 2
    assert "at least 5" in capsys.readouterr().err
