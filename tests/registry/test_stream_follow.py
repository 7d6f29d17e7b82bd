"""``sparkml-ops score --stream -m models:/scorer@champion --reload-every N``: the stream follows the
alias, each row names the version that scored it, and every input row lands exactly once across the
switch and a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tests.models import pyfunc_models
from tests.models.conftest import features
from tests.models.test_jobs import _flush, _table, _wait_for, _write_file

pytestmark = [pytest.mark.timeout(2400), pytest.mark.usefixtures("allow_pickle")]


@pytest.fixture
def allow_pickle(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


def test_stream_follows_an_alias_exactly_once(tmp_path, tracking_uri):
    import mlflow

    from sparkml_ops.models.jobio import ScoreSpec
    from sparkml_ops.models.jobs import prepare_job, start_job

    for offset in (0.0, 1000.0):  # version 1 adds 0 to f0, version 2 adds 1000
        with mlflow.start_run():
            info = pyfunc_models.log_pyfunc(pyfunc_models.EchoSum(offset), pyfunc_models.scalar_signature())
        mlflow.register_model(info.model_uri, "scorer")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("scorer", "champion", 1)
    _flush()
    source, output = tmp_path / "incoming", tmp_path / "scored"
    source.mkdir()
    for i in range(2):
        _write_file(source, i)
    spec = ScoreSpec(model="models:/scorer@champion", input=str(source), input_format="parquet", output=str(output),
                     stream=True, max_files_per_trigger=1, trigger_seconds=0.5, reload_every=1,
                     tracking_uri=tracking_uri)
    log = tmp_path / "stream-1.log"
    with open(log, "w") as sink:
        proc = start_job(prepare_job(spec), stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: len(_table(output)) >= 40, "a batch from version 1", proc, log, timeout=900)
        client.set_registered_model_alias("scorer", "champion", 2)
        for i in range(2, 5):
            _write_file(source, i)
        _wait_for(lambda: 2 in set(_table(output).get("model_version", [])), "a batch from version 2", proc, log,
                  timeout=900)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole spark-submit group, mid-stream
        proc.wait(30)
    _write_file(source, 5)
    log2 = tmp_path / "stream-2.log"
    with open(log2, "w") as sink:
        proc2 = start_job(prepare_job(replace(spec, available_now=True)), stdout=sink, stderr=subprocess.STDOUT)
        assert proc2.wait(900) == 0, log2.read_text()[-5000:]
    table = _table(output)
    assert sorted(table.id.tolist()) == list(range(6 * 40))  # every input row exactly once
    by_version = table.groupby("model_version").stream_batch_id.agg(["min", "max"])
    assert set(by_version.index) == {1, 2}
    assert by_version.loc[1, "max"] < by_version.loc[2, "min"]  # one switch, no flapping
    inputs = pd.concat([features(40, seed=i).assign(id=np.arange(i * 40, (i + 1) * 40)) for i in range(6)])
    merged = table.merge(inputs[["id", "f0"]], on="id", suffixes=("", "_in"))
    offset = np.where(merged.model_version == 2, 1000.0, 0.0)
    np.testing.assert_allclose(merged.prediction.to_numpy(), merged.f0_in.to_numpy() + offset)
    assert set(table.model_uri) == {"models:/scorer@champion"}
