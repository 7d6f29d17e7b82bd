"""Scoring jobs: the Delta sink, ``sparkml-ops score`` batch (packed env) and stream (kill, restart, reload)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli_run import run_cli
from tests.models import pyfunc_models
from tests.models.conftest import FEATURES, SKLEARN_REQS, features, labels

pytestmark = pytest.mark.usefixtures("allow_pickle")
REPO = Path(__file__).resolve().parents[2]
# Packed envs are cached by content hash; a persistent cache makes reruns (and CI on a kept machine) cheap.
ENV_CACHE = Path(os.environ.get("SPARKML_OPS_TEST_ENV_CACHE", "~/.cache/sparkml_ops/test-envs")).expanduser()


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparkml_ops.cli", "score", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _result(stdout: str) -> dict:
    from sparkml_ops.models.jobio import RESULT_PREFIX

    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def _flush() -> None:
    import mlflow

    mlflow.flush_async_logging()  # other processes read only committed state


def test_delta_sink_commits_each_version_once(spark, tmp_path):
    from deltalake import DeltaTable

    from sparkml_ops.models.delta_sink import committed_version, write_frame

    table = str(tmp_path / "out")
    df = spark.range(0, 100, 1, 3).selectExpr("id", "id * 2.0 as x", "array(id, id) as pair",
                                                "named_struct('a', id, 'b', cast(id as string)) as s",
                                                "current_timestamp() as ts")
    first = write_frame(df, table, app_id="app-1", version=0)
    again = write_frame(df, table, app_id="app-1", version=0)
    second = write_frame(df.limit(10), table, app_id="app-1", version=1)
    assert (first.committed, first.rows, again.committed, second.rows) == (True, 100, False, 10)
    assert committed_version(table, "app-1") == 1
    data = DeltaTable(table).to_pyarrow_table()
    assert data.num_rows == 110 and sorted(data.column("id").to_pylist()) == sorted(list(range(100)) + list(range(10)))
    assert str(data.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert all("/data/" in f for f in DeltaTable(table).file_uris())
    overwritten = write_frame(df.limit(5), table, app_id="app-2", version=0, mode="overwrite")
    assert overwritten.committed and DeltaTable(table).to_pyarrow_table().num_rows == 5


def _spec(command: str) -> dict:
    """The job spec of a printed spark-submit command."""
    args = shlex.split(command)
    return json.loads(args[args.index("--spec") + 1])


def test_cli_builds_the_spark_submit_command_and_rejects_bad_flags(tmp_path, lr_model, tracking_uri, capsys):
    info, *_ = lr_model
    root = tracking_uri[len("delta:"):]
    common = ["score", "--root", root, "--model", info.model_uri]
    assert run_cli(*common, "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--master", "local[3]",
                   "--conf", "spark.executor.memory=1g", "--dry-run") == 0
    command = capsys.readouterr().out.strip()
    assert "bin/spark-submit --master 'local[3]'" in command and "jobs/batch_score.py" in command
    assert "spark.executor.memory=1g" in command
    spec = _spec(command)
    assert (spec["format"], spec["tracking_uri"], spec["model"], spec["stream"]) == (
        "delta", tracking_uri, info.model_uri, False)
    assert run_cli(*common, "--input", "x", "--output", "y", "--stream", "--format", "parquet", "--dry-run") == 2
    assert "--stream writes a Delta table" in capsys.readouterr().err
    assert run_cli(*common, "--input", "x", "--output", "y", "--checkpoint", "c", "--dry-run") == 2
    assert "--checkpoint applies to --stream only" in capsys.readouterr().err
    assert run_cli(*common, "--input", "rate", "--output", "y", "--stream", "--reload-every", "5", "--dry-run") == 0
    command = capsys.readouterr().out
    assert "jobs/stream_score.py" in command and _spec(command)["reload_every"] == 5
    assert run_cli(*common, "--input", "x", "--output", "y", "--stream", "--input-format", "csv", "--dry-run") == 2
    assert "--input-format csv cannot be streamed" in capsys.readouterr().err
    assert run_cli(*common, "--input", "x", "--output", "y", "--columns", "f1,f0", "--dry-run") == 0
    assert _spec(capsys.readouterr().out)["columns"] == ["f1", "f0"]
    assert run_cli(*common, "--input", "x", "--output", "y", "--columns", "f1,,f0", "--dry-run") == 2
    assert "has an empty column name" in capsys.readouterr().err
    assert run_cli(*common, "--input", "x", "--output", "y", "--conf", "novalue", "--dry-run") == 2
    assert "--conf 'novalue' must be KEY=VALUE" in capsys.readouterr().err


def test_batch_job_binds_a_tensor_signature_by_columns(spark, tmp_path, tracking_uri):
    """A model logged with a NumPy input example (as the quickstart's) has no column names to bind."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from sparkml_ops.errors import BadInput
    from sparkml_ops.models import batch_job
    from sparkml_ops.models.jobio import ScoreSpec

    X = features(200)
    model = LogisticRegression().fit(X.to_numpy(), labels(X))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="m", input_example=X.to_numpy()[:3],
                                        serialization_format="cloudpickle", pip_requirements=SKLEARN_REQS)
    source = tmp_path / "in.parquet"
    X.assign(id=np.arange(len(X))).to_parquet(source)
    spec = ScoreSpec(model=info.model_uri, input=str(source), output=str(tmp_path / "out"), format="parquet")
    with pytest.raises(BadInput, match="unnamed tensor of 4"):
        batch_job.run(spark, spec)
    batch_job.run(spark, replace(spec, columns=tuple(FEATURES)))
    out = pd.read_parquet(tmp_path / "out").sort_values("id")
    np.testing.assert_array_equal(out.prediction.to_numpy(), model.predict(X.to_numpy()))
    assert set(out.model_id) == {info.model_id}


@pytest.mark.slow
def test_batch_job_runs_executors_from_the_packed_env(tmp_path, lr_model, tracking_uri):
    from deltalake import DeltaTable

    from sparkml_ops.envs import unpacked_root
    from sparkml_ops.models.environment import build_model_env
    from sparkml_ops.models.resolve import resolve_model

    info, run_id, model, X = lr_model
    _flush()
    env = build_model_env(resolve_model(info.model_uri), cache_dir=ENV_CACHE)
    again = build_model_env(resolve_model(info.model_uri), cache_dir=ENV_CACHE)
    assert again.cache_hit and again.env_hash == env.env_hash
    env_root = str(unpacked_root(env))
    source = tmp_path / "in"
    source.mkdir()
    X.assign(id=np.arange(len(X))).to_parquet(source / "part-0.parquet")
    output = tmp_path / "scored"
    done = _cli("--root", tracking_uri, "--model", info.model_uri, "--input", str(source), "--output", str(output),
                "--env", "packed", "--env-cache", str(ENV_CACHE), "--quiet")
    assert done.returncode == 0, done.stderr[-5000:]
    result = _result(done.stdout)
    assert result["rows"] == len(X) and result["committed"]
    workers = result["workers"]
    assert workers and all(w["executable"].startswith(env_root) for w in workers), workers
    assert all(w["sklearn_file"].startswith(env_root) for w in workers), workers
    assert result["driver_python"] == sys.executable
    table = DeltaTable(str(output)).to_pandas().sort_values("id")
    np.testing.assert_array_equal(table.prediction.to_numpy(), model.predict(X))
    assert set(table.model_uri) == {info.model_uri} and set(table.model_run_id) == {run_id}
    assert set(table.model_id) == {info.model_id}


def _write_file(source: Path, index: int, rows: int = 40) -> None:
    frame = features(rows, seed=index).assign(id=np.arange(index * rows, (index + 1) * rows))
    tmp = source / f".{index}.parquet.tmp"
    frame.to_parquet(tmp)
    os.replace(tmp, source / f"part-{index:03d}.parquet")  # appear atomically to the file source


def _table(path: Path) -> pd.DataFrame:
    from deltalake import DeltaTable

    if not (path / "_delta_log").is_dir():
        return pd.DataFrame(columns=["id", "model_id"])
    return DeltaTable(str(path)).to_pandas()


def _wait_for(predicate, what: str, proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"stream job exited ({proc.returncode}) while waiting for {what}:\n"
                                 f"{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


@pytest.mark.slow
def test_stream_job_exactly_once_across_kill_with_model_reload(tmp_path, tracking_uri):
    import mlflow

    from sparkml_ops.models.jobio import ScoreSpec
    from sparkml_ops.models.jobs import prepare_job, start_job

    with mlflow.start_run():
        first = pyfunc_models.log_pyfunc(pyfunc_models.EchoSum(0.0), pyfunc_models.scalar_signature(), name="scorer")
    _flush()
    source, output = tmp_path / "incoming", tmp_path / "scored"
    source.mkdir()
    for i in range(2):
        _write_file(source, i)
    spec = ScoreSpec(model="logged-model:/scorer/latest", input=str(source), input_format="parquet", output=str(output),
                     stream=True, max_files_per_trigger=1, trigger_seconds=0.5, reload_every=1,
                     tracking_uri=tracking_uri)
    job = prepare_job(spec)
    log = tmp_path / "stream-1.log"
    with open(log, "w") as sink:
        proc = start_job(job, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: len(_table(output)) >= 40, "a batch from the first model", proc, log)
        with mlflow.start_run():
            second = pyfunc_models.log_pyfunc(pyfunc_models.EchoSum(1000.0), pyfunc_models.scalar_signature(),
                                              name="scorer")
        _flush()
        for i in range(2, 4):
            _write_file(source, i)
        _wait_for(lambda: second.model_id in set(_table(output).model_id), "a batch from the reloaded model",
                  proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole spark-submit group, mid-stream
        proc.wait(30)
    for i in range(4, 6):
        _write_file(source, i)
    restart = prepare_job(replace(spec, available_now=True))
    log2 = tmp_path / "stream-2.log"
    with open(log2, "w") as sink:
        proc2 = start_job(restart, stdout=sink, stderr=subprocess.STDOUT)
        assert proc2.wait(600) == 0, log2.read_text()[-5000:]
    table = _table(output)
    assert sorted(table.id.tolist()) == list(range(6 * 40))  # every input row exactly once
    by_model = table.groupby("model_id").stream_batch_id.agg(["min", "max"])
    assert set(by_model.index) == {first.model_id, second.model_id}
    assert by_model.loc[first.model_id, "max"] < by_model.loc[second.model_id, "min"]  # reload, no flapping
    inputs = pd.concat([features(40, seed=i).assign(id=np.arange(i * 40, (i + 1) * 40)) for i in range(6)])
    merged = table.merge(inputs[["id", "f0"]], on="id", suffixes=("", "_in"))
    offset = np.where(merged.model_id == second.model_id, 1000.0, 0.0)
    np.testing.assert_allclose(merged.prediction.to_numpy(), merged.f0_in.to_numpy() + offset)
    assert set(table.model_uri) == {"logged-model:/scorer/latest"}
