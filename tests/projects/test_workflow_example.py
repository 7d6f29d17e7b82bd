"""The examples/workflow pipeline end to end: load -> train x2 -> pick the best -> score, each a spark-submit run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflow" / "main.py"
# Packed envs are cached by content hash; a persistent cache makes reruns cheap (a cold build takes ~1-2 min).
ENV_CACHE = Path(os.environ.get("SPARKML_OPS_TEST_ENV_CACHE", "~/.cache/sparkml_ops/test-envs")).expanduser()


@pytest.mark.spark
@pytest.mark.slow
def test_workflow_composes_tracked_runs_in_a_packed_env(tmp_path):
    from mlflow import MlflowClient

    root = tmp_path / "lake"
    env = {**os.environ, "SPARKML_OPS_ENV_CACHE": str(ENV_CACHE)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, str(EXAMPLE), "--regs", "0.01,1", "--rows", "2000", "--root", str(root),
                           "--out", str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])

    client = MlflowClient(f"delta:{root}")
    parent = client.get_run(summary["parent_run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    steps = sorted(run.data.tags["workflow.step"] for run in children)
    assert steps == ["load", "score", "train", "train"]
    assert all(run.info.status == "FINISHED" for run in children)
    trained = [run for run in children if run.data.tags["workflow.step"] == "train"]
    best = max(trained, key=lambda run: run.data.metrics["accuracy"])
    assert summary["best_run_id"] == best.info.run_id == parent.data.tags["best_run_id"]
    # the score step ran our Arrow scorer on executors from the packed env
    predictions = pd.read_parquet(summary["predictions"])
    assert len(predictions) == 2000 and set(predictions.prediction.unique()) <= {0, 1}
    scored = client.get_run(summary["score_run_id"]).data
    assert scored.tags["scorer"] == "sparkml_ops"
    assert scored.metrics["scored_rows"] == 2000 and scored.metrics["agreement"] > 0.5
