"""Tuning an MLflow project: each trial a spark-submit job on the local master, parallel, metric read back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import tracking_to
from tests.projects.conftest import write_project

REPO = Path(__file__).resolve().parents[2]

PROJECT = {
    "MLproject": """
        name: quad
        python_env: python_env.yaml
        entry_points:
          train:
            parameters:
              lr: float
              depth: {type: int, default: 3}
            command: "python train.py --lr {lr} --depth {depth}"
    """,
    "python_env.yaml": """
        python: "3.11"
        dependencies: []
    """,
    "train.py": """
        import argparse
        import math
        import os
        import time

        import mlflow

        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float)
        parser.add_argument("--depth", type=int)
        args = parser.parse_args()
        mlflow.log_metric("started_at", time.time())
        time.sleep(2.0)  # long enough for two trials' jobs to overlap
        mlflow.log_metric("rmse", (math.log10(args.lr) + 2) ** 2 + (args.depth - 4) ** 2)
        mlflow.log_metric("ended_at", time.time())
        mlflow.set_tag("pid", str(os.getpid()))
    """,
}


def test_sparkml_ops_tune_runs_parallel_spark_submit_trials(root: Path, tmp_path: Path):
    project = write_project(tmp_path / "quad", PROJECT)
    command = [sys.executable, "-m", "sparkml_ops.cli", "tune", str(project), "-e", "train",
               "--space", "lr=loguniform:1e-4:1e-1", "--space", "depth=randint:2:6", "--metric", "rmse",
               "--mode", "min", "--max-trials", "3", "--parallelism", "2", "--master", "local[1]",
               "--env-manager", "local", "--seed", "3", "--experiment-name", "quad-tuning", "--root", str(root)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["trials"]) == 3 and time.monotonic() - started < 900
    with tracking_to(root):
        client = MlflowClient()
        experiment = client.get_experiment_by_name("quad-tuning")
        runs = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{out['parent_run_id']}'")
        assert len(runs) == 3
        for run in runs:
            assert run.info.status == "FINISHED"
            assert run.data.tags["mlflow.project.backend"] == "spark-submit"
            assert run.data.tags["sparkml_ops.spark.master"] == "local[1]"
            lr, depth = float(run.data.params["lr"]), int(run.data.params["depth"])
            assert 1e-4 <= lr <= 1e-1 and 2 <= depth <= 6
            assert run.data.metrics["rmse"] == pytest.approx((__import__("math").log10(lr) + 2) ** 2 + (depth - 4) ** 2)
        spans = sorted((r.data.metrics["started_at"], r.data.metrics["ended_at"]) for r in runs)
        assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), spans  # jobs overlapped
        best = min(runs, key=lambda r: r.data.metrics["rmse"])
        assert out["best_run_id"] == best.info.run_id and out["best_value"] == best.data.metrics["rmse"]
        assert out["best_params"] == {"lr": float(best.data.params["lr"]), "depth": int(best.data.params["depth"])}
        parent = client.get_run(out["parent_run_id"])
        assert parent.info.status == "FINISHED" and parent.data.tags["sparkml_ops.tuning.kind"] == "project"


def test_bad_space_spec_is_refused_before_any_job(root: Path, tmp_path: Path):
    project = write_project(tmp_path / "quad", PROJECT)
    done = subprocess.run([sys.executable, "-m", "sparkml_ops.cli", "tune", str(project), "-e", "train",
                           "--space", "lr=gaussian:0:1", "--metric", "rmse", "--max-trials", "2",
                           "--root", str(root)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2 and "KIND one of" in done.stderr and "lr=gaussian:0:1" in done.stderr
    done = subprocess.run([sys.executable, "-m", "sparkml_ops.cli", "tune", str(project), "-e", "train",
                           "--space", "depth=randint:2:6", "--metric", "rmse", "--max-trials", "2",
                           "--root", str(root)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2 and "requires parameters ['lr']" in done.stderr, done.stderr
    assert not root.exists()  # refused before the tracking root was even opened
