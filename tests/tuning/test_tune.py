"""tune() on real Spark (local[2]) against a real Delta tracking root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from sparkml_ops.errors import TuningFailed
from sparkml_ops.tuning import choice, loguniform, randint, tune, uniform
from tests.tuning import objectives as O

BRANIN = {"x": uniform(-5, 10), "y": uniform(0, 15)}
REPO = Path(__file__).resolve().parents[2]


def children(parent_run_id: str) -> list:
    runs = MlflowClient().search_runs(
        [MlflowClient().get_run(parent_run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000)
    return list(runs)


def test_branin_found_with_every_trial_a_complete_child_run(tracking_uri, spark):
    result = tune(O.branin, BRANIN, max_trials=20, parallelism=2, seed=3, spark=spark, experiment="branin")
    assert result.best_value - O.BRANIN_MIN < 2.5, result.trials.sort_values("loss").head()
    assert result.best_value == pytest.approx(O.branin(result.best_params))
    runs = children(result.parent_run_id)
    assert len(runs) == 20 and len(result.trials) == 20
    for run in runs:
        assert run.info.status == "FINISHED"
        assert set(run.data.params) == {"x", "y"}
        x, y = float(run.data.params["x"]), float(run.data.params["y"])
        assert -5 <= x <= 10 and 0 <= y <= 15
        assert run.data.metrics["loss"] == pytest.approx(O.branin({"x": x, "y": y}))
        assert run.info.end_time >= run.info.start_time
    assert sorted(result.trials["number"]) == list(range(20))
    assert set(result.trials["run_id"]) == {r.info.run_id for r in runs}
    assert result.best_value == result.trials["loss"].min()
    parent = MlflowClient().get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_loss"] == result.best_value
    assert parent.data.tags["sparkml_ops.tuning.best_run_id"] == result.best_run_id
    assert json.loads(parent.data.tags["sparkml_ops.tuning.best_params"]) == result.best_params
    assert parent.data.params["tune.max_trials"] == "20"
    plots = {Path(a.path).name for a in MlflowClient().list_artifacts(result.parent_run_id, "plots")}
    assert plots == {f"{n}.{e}" for n in ("optimization_history", "parallel_coordinate") for e in ("html", "png")}
    html = Path(mlflow.artifacts.download_artifacts(run_id=result.parent_run_id,
                                                    artifact_path="plots/optimization_history.html")).read_text()
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js itself is embedded: no CDN
    png = Path(mlflow.artifacts.download_artifacts(run_id=result.parent_run_id,
                                                   artifact_path="plots/parallel_coordinate.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_logging_inside_the_objective_lands_in_the_trial_run(tracking_uri, spark):
    result = tune(O.quadratic_logging, {"x": uniform(-2, 3), "k": randint(1, 3)}, max_trials=3, parallelism=2,
                  seed=1, spark=spark)
    client = MlflowClient()
    for row in result.trials.itertuples():
        run = client.get_run(row.run_id)
        assert run.data.tags["seen_run_id"] == row.run_id  # mlflow.active_run() was the child run
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert int(run.data.params["pid"]) != os.getpid()  # logged from an executor's Python worker
        assert [m.step for m in client.get_metric_history(row.run_id, "epoch_loss")] == [0, 1, 2]
        assert run.data.metrics["other"] == float(run.data.params["k"])
    assert "metrics.other" in result.trials.columns


def test_failing_trials_are_failed_runs_and_max_failures_stops(tracking_uri, spark):
    # seed 2 samples x = -0.13, -0.95, 0.10, -0.13, ...: the third failure comes with the fourth trial
    result = tune(O.fails_on_negative, {"x": uniform(-1, 1)}, max_trials=12, parallelism=1, max_failures=3,
                  sampler="random", seed=2, spark=spark)
    runs = children(result.parent_run_id)
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed) == 3 and len(runs) == 4
    for run in failed:
        assert "ValueError" in run.data.tags["sparkml_ops.tuning.error"]
        assert "is negative" in run.data.tags["sparkml_ops.tuning.error"]
        assert "loss" not in run.data.metrics
    assert [r.info.status for r in runs if r not in failed] == ["FINISHED"]
    tags = MlflowClient().get_run(result.parent_run_id).data.tags
    assert tags["sparkml_ops.tuning.stop_reason"] == "max_failures"
    assert list(result.trials["status"]) == ["FAILED", "FAILED", "FINISHED", "FAILED"]
    assert result.best_value == pytest.approx(0.1, abs=0.01)
    assert result.trials["error"].iloc[0].startswith("ValueError: x=")


@pytest.mark.parametrize("objective, message", [
    (O.no_metric, "returned metrics ['accuracy'] but not 'loss'"),
    (O.nan_result, "returned NaN for metric 'loss'"),
    (O.text_result, "non-numeric value 'good' for metric 'loss'"),
])
def test_bad_results_fail_the_trial_and_name_it(tracking_uri, spark, objective, message):
    with pytest.raises(TuningFailed, match="no finished trial") as caught:
        tune(objective, {"x": uniform(0, 1)}, max_trials=2, parallelism=2, spark=spark)
    text = str(caught.value)
    assert message in text and "; trial 0 (run " in text, text  # the lowest-numbered failure, whatever ended first
    runs = MlflowClient().search_runs(["0"])
    assert {r.info.status for r in runs} == {"FAILED"} and len(runs) == 3  # the parent and both trials
    assert all(message in r.data.tags["sparkml_ops.tuning.error"] for r in runs if "mlflow.parentRunId" in r.data.tags)


def test_timeout_and_patience_stop_launching(tracking_uri, spark, monkeypatch):
    monkeypatch.setenv("TUNING_TEST_SLEEP", "0.5")
    started = time.monotonic()
    timed = tune(O.sleepy, {"x": uniform(0, 4)}, max_trials=50, parallelism=1, timeout_s=1.0, spark=spark)
    assert 1 <= len(timed.trials) < 50 and time.monotonic() - started < 120
    assert MlflowClient().get_run(timed.parent_run_id).data.tags["sparkml_ops.tuning.stop_reason"] == "timeout"
    # a constant objective never improves on its first trial: patience 2 stops after 3 trials
    patient = tune(O.trivial, {"x": choice([1.0])}, max_trials=30, parallelism=1, patience=2, spark=spark)
    assert len(patient.trials) == 3
    assert MlflowClient().get_run(patient.parent_run_id).data.tags["sparkml_ops.tuning.stop_reason"] == "patience"


def test_conditional_space_and_grid_sampler(tracking_uri, spark):
    space = {"model": choice([{"kind": "linear", "alpha": loguniform(1e-4, 1.0)},
                              {"kind": "tree", "depth": randint(2, 6)}])}
    result = tune(O.nested, space, max_trials=6, parallelism=2, seed=5, sampler="random", spark=spark)
    for run in children(result.parent_run_id):
        params = run.data.params
        assert params["model.kind"] in ("linear", "tree")
        assert set(params) == ({"model.kind", "model.alpha"} if params["model.kind"] == "linear"
                               else {"model.kind", "model.depth"})
    grid = tune(O.trivial, {"x": choice([1, 2]), "k": randint(0, 1)}, max_trials=10, parallelism=2,
                sampler="grid", spark=spark)
    pairs = {(r.data.params["x"], r.data.params["k"]) for r in children(grid.parent_run_id)}
    assert len(grid.trials) == 4 and pairs == {("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")}
    assert grid.best_value == 1


def test_driver_killed_mid_study_then_resumed(root, spark):
    """SIGKILL the driver (and its Spark) while trials run; resume finishes exactly max_trials trials."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNING_TEST_SLEEP": "1.0", "SPARKML_OPS_FLUSH_INTERVAL_MS": "50"}
    driver = subprocess.Popen([sys.executable, str(REPO / "tests" / "tuning" / "driver.py"), str(root), "8"],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors: list[bytes] = []
    threading.Thread(target=lambda: errors.append(driver.stderr.read()), daemon=True).start()
    from tests.conftest import tracking_to

    with tracking_to(root):
        client = MlflowClient()
        deadline, finished_before = time.monotonic() + 400, []
        while time.monotonic() < deadline and driver.poll() is None:
            time.sleep(1.0)
            experiment = client.get_experiment_by_name("killed-study") if (root / "_sparkml_ops.json").exists() \
                else None
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
            finished_before = [r for r in runs if r.info.status == "FINISHED" and "mlflow.parentRunId" in r.data.tags]
            if len(finished_before) >= 3:
                break
        assert driver.poll() is None, errors
        assert 3 <= len(finished_before) < 8, "the study did not get under way in time"
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        parent_id = finished_before[0].data.tags["mlflow.parentRunId"]

        result = tune(O.sleepy, {"x": uniform(-5, 5)}, max_trials=8, parallelism=2, seed=7, spark=spark,
                      resume=parent_id)
        runs = children(parent_id)
        statuses = [r.info.status for r in runs]
        assert statuses.count("FINISHED") == 8 and "RUNNING" not in statuses and "FAILED" not in statuses
        assert set(statuses) <= {"FINISHED", "KILLED"}
        done = [r for r in runs if r.info.status == "FINISHED"]
        assert len({r.data.params["x"] for r in done}) == 8  # no finished trial ran twice
        assert {r.info.run_id for r in finished_before} <= {r.info.run_id for r in done}  # none lost
        assert len(result.trials) == 8 and set(result.trials["run_id"]) == {r.info.run_id for r in done}
        assert client.get_run(parent_id).info.status == "FINISHED"
        assert client.get_run(parent_id).data.tags["sparkml_ops.tuning.resumed_with"] == str(len(finished_before)) \
            or int(client.get_run(parent_id).data.tags["sparkml_ops.tuning.resumed_with"]) >= len(finished_before)
