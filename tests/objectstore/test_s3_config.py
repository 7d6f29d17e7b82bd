"""How a user configures an S3 root: commit safety options, the AWS_* environment (no
``SPARKML_OPS_STORAGE_OPTIONS``) through the CLI, and a killed writer's log on local disk."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparkml_ops.lake import parse_root
from tests.objectstore.conftest import new_root, storage_options


def test_s3_roots_ask_for_conditional_writes(monkeypatch, caplog):
    for name in ("AWS_S3_ALLOW_UNSAFE_RENAME", "AWS_CONDITIONAL_PUT", "AWS_S3_LOCKING_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    given = {"AWS_REGION": "eu-west-1"}
    for uri in ("delta://s3://bucket/x", "s3a://bucket/x"):
        assert parse_root(uri, given).storage_options == {**given, "conditional_put": "etag"}
    assert given == {"AWS_REGION": "eu-west-1"}  # the caller's dict is not changed
    assert "conditional_put" not in parse_root("gs://bucket/x", given).storage_options
    # a user's own choice is kept; unsafe rename without conditional writes is never silent
    with caplog.at_level(logging.WARNING, logger="sparkml_ops.lake.location"):
        assert parse_root("s3://b/x", {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}).storage_options[
            "conditional_put"] == "etag"
        assert not caplog.records  # conditional writes win over rename: safe
        kept = {"conditional_put": "disabled", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
        assert parse_root("s3://b/x", kept).storage_options == kept
        assert "lose data" in caplog.text
        caplog.clear()
        monkeypatch.setenv("AWS_S3_LOCKING_PROVIDER", "dynamodb")
        parse_root("s3://b/x", {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"})
        assert not caplog.records  # delta-rs's DynamoDB lock guards the rename


def _cli(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "sparkml_ops.cli", *args], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow
def test_cli_on_an_s3_root_configured_by_aws_environment_variables(s3_root, s3_endpoint):
    import mlflow

    with mlflow.start_run(run_name="cli-run") as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("loss", 0.25)
    env = {k: v for k, v in os.environ.items() if k != "SPARKML_OPS_STORAGE_OPTIONS"}
    env.update(storage_options(s3_endpoint))  # what delta-rs reads from a user's environment
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    listed = _cli("runs", "--root", s3_root, env=env)
    assert run.info.run_id in listed and "0.25" in listed and "0.1" in listed
    lines = [json.loads(line) for line in _cli("maintain", "--root", s3_root, env=env).splitlines()]
    reports = [line for line in lines if "table" in line]
    assert {r["table"] for r in reports} >= {"runs", "metrics", "params"}
    assert lines[-1] == {"current_state": "not built: object-store root"}  # search keeps the in-memory path
    assert all(r["files_after"] <= 1 for r in reports), reports  # compacted on the object store
    client = mlflow.MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.25}  # still readable after compaction


STEPS = 500


def _logger(uri: str, ack: str) -> None:
    """Create a run, log STEPS values (acknowledged, not committed: the flush interval is an
    hour), write the run id to ``ack``, then wait to be killed."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    for step in range(STEPS):
        client.log_metric(run_id, "loss", float(step), step=step)
    Path(ack).write_text(run_id)
    time.sleep(600)


def test_killed_writer_on_s3_is_replayed_from_its_local_log(s3_root, s3_settings, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from sparkml_ops.lake import Lake

    monkeypatch.setenv("SPARKML_OPS_FLUSH_INTERVAL_MS", "3600000")
    ack = tmp_path / "ack"
    child = mp.get_context("spawn").Process(target=_logger, args=(s3_root, str(ack)))
    child.start()
    deadline = time.time() + 180
    while not ack.exists() and time.time() < deadline and child.is_alive():
        time.sleep(0.1)
    assert ack.exists(), "the writer did not log"
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    run_id = ack.read_text()
    monkeypatch.setenv("SPARKML_OPS_FLUSH_INTERVAL_MS", "100")

    wal = Path(s3_settings["SPARKML_OPS_WAL_DIR"])
    assert any(wal.rglob("seg-*")), "the acknowledged values are in a log on local disk"
    assert Lake._open.get(parse_root(s3_root)) is None  # this process opens the root only now
    history = MlflowClient(s3_root).get_metric_history(run_id, "loss")  # opening the root replays the log
    assert sorted(m.step for m in history) == list(range(STEPS))
    assert not any(wal.rglob("seg-*")), "a replayed log is removed"
    assert Lake.open(parse_root(s3_root)).recover() == 0  # nothing is applied twice
    assert len(MlflowClient(s3_root).get_metric_history(run_id, "loss")) == STEPS


def test_write_ahead_logs_of_one_bucket_on_two_endpoints_never_mix(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARKML_OPS_WAL_DIR", str(tmp_path))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    on_aws = parse_root("s3://bucket/x").wal_dir()
    on_minio = parse_root("s3://bucket/x", {"AWS_ENDPOINT_URL": "http://minio:9000"}).wal_dir()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000/")
    assert parse_root("s3://bucket/x").wal_dir() == on_minio  # the same endpoint, from the environment
    assert on_aws != on_minio and on_aws.parent == on_minio.parent == tmp_path
    assert parse_root(new_root()).wal_dir() != on_aws
