"""The stock ``mlflow`` fluent and client API, end to end, through a ``delta:`` tracking URI."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType

from sparkml_ops.tracking.store import DeltaTrackingStore


def test_tracking_uri_resolves_to_our_store(tracking_uri):
    client = MlflowClient()
    assert client.tracking_uri == tracking_uri
    assert isinstance(client._tracking_client.store, DeltaTrackingStore)


def test_experiment_lifecycle(tracking_uri):
    client = MlflowClient()
    exp_id = client.create_experiment("exp-a", tags={"team": "ads", "tier": "1"})
    assert client.get_experiment(exp_id).name == "exp-a"
    assert client.get_experiment(exp_id).tags == {"team": "ads", "tier": "1"}
    assert client.get_experiment_by_name("exp-a").experiment_id == exp_id
    assert client.get_experiment_by_name("no-such-experiment") is None

    client.set_experiment_tag(exp_id, "tier", "2")
    client.set_experiment_tag(exp_id, "extra", "x")
    client.delete_experiment_tag(exp_id, "team")
    assert client.get_experiment(exp_id).tags == {"tier": "2", "extra": "x"}

    client.rename_experiment(exp_id, "exp-renamed")
    assert client.get_experiment(exp_id).name == "exp-renamed"
    assert client.get_experiment_by_name("exp-a") is None
    assert client.get_experiment_by_name("exp-renamed").experiment_id == exp_id

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    active = {e.experiment_id for e in client.search_experiments()}
    deleted = {e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)}
    assert exp_id not in active and exp_id in deleted
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert exp_id in {e.experiment_id for e in client.search_experiments()}


def test_search_experiments_filter_order_and_paging(tracking_uri):
    client = MlflowClient()
    ids = [client.create_experiment(f"sweep-{i:02d}", tags={"parity": "even" if i % 2 == 0 else "odd"})
           for i in range(7)]
    found = client.search_experiments(filter_string="name LIKE 'sweep-%' AND tags.parity = 'even'",
                                      order_by=["name DESC"])
    assert [e.name for e in found] == ["sweep-06", "sweep-04", "sweep-02", "sweep-00"]
    pages, token = [], None
    while True:
        page = client.search_experiments(max_results=3, page_token=token, filter_string="name LIKE 'sweep%'",
                                         order_by=["name ASC"])
        pages.append([e.experiment_id for e in page])
        token = page.token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == ids


def test_fluent_run_end_to_end(tracking_uri):
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_params({"n": 3, "lr": 0.1})
        for step in range(20):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
        mlflow.set_tags({"stage": "dev", "owner": "me"})
        mlflow.delete_tag("owner")
    run_id = run.info.run_id
    got = mlflow.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.info.run_name == "first"
    assert got.data.params == {"n": "3", "lr": "0.1"}
    assert got.data.metrics == {"loss": pytest.approx(1 / 20), "acc": 0.9, "f1": 0.8}
    assert got.data.tags["stage"] == "dev"
    assert "owner" not in got.data.tags
    assert got.data.tags["mlflow.runName"] == "first"

    frame = mlflow.search_runs(filter_string="params.n = '3' and metrics.loss < 0.1", order_by=["metrics.loss ASC"])
    assert list(frame["run_id"]) == [run_id]
    assert frame.loc[0, "metrics.acc"] == 0.9

    history = MlflowClient().get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(20))
    assert [m.value for m in history] == [1 / (s + 1) for s in range(20)]


def test_client_run_lifecycle_and_logging(tracking_uri):
    client = MlflowClient()
    exp_id = client.create_experiment("client-runs")
    run = client.create_run(exp_id, run_name="r1", tags={"a": "1"}, start_time=1_000)
    run_id = run.info.run_id
    assert run.info.status == "RUNNING" and run.info.start_time == 1_000
    assert client.get_run(run_id).data.tags["a"] == "1"

    client.log_param(run_id, "alpha", "0.5")
    client.log_param(run_id, "alpha", "0.5")  # same value again is fine
    client.log_metric(run_id, "m", 1.5, timestamp=10, step=2)
    client.set_tag(run_id, "b", "2")
    client.delete_tag(run_id, "a")
    client.log_batch(
        run_id,
        metrics=[Metric("m", 2.5, 20, 3), Metric("other", -1.0, 20, 0)],
        params=[Param("beta", "x")],
        tags=[RunTag("c", "3")],
    )
    data = client.get_run(run_id).data
    assert data.params == {"alpha": "0.5", "beta": "x"}
    assert data.metrics == {"m": 2.5, "other": -1.0}
    assert {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")} == {"b": "2", "c": "3"}

    client.update_run(run_id, status="KILLED", name="renamed")
    info = client.get_run(run_id).info
    assert info.status == "KILLED" and info.run_name == "renamed"
    assert client.get_run(run_id).data.tags["mlflow.runName"] == "renamed"

    client.set_terminated(run_id, status="FINISHED", end_time=5_000)
    info = client.get_run(run_id).info
    assert info.status == "FINISHED" and info.end_time == 5_000

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id]) == []
    assert [r.info.run_id for r in client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)] == [run_id]
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [run_id]


def test_deleting_an_experiment_deletes_its_runs_and_restoring_brings_them_back(tracking_uri):
    client = MlflowClient()
    exp_id = client.create_experiment("cascade")
    run_id = client.create_run(exp_id).info.run_id
    client.delete_experiment(exp_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_metric_history_paging_and_bulk_interval(tracking_uri, store):
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", float(s) / 10, 1_000 + s, s) for s in range(100)])
    full = client.get_metric_history(run_id, "loss")
    assert len(full) == 100 and [m.step for m in full] == list(range(100))

    page = store.get_metric_history(run_id, "loss", max_results=30)
    collected = list(page)
    while page.token:
        page = store.get_metric_history(run_id, "loss", max_results=30, page_token=page.token)
        collected += list(page)
    assert [(m.step, m.value, m.timestamp) for m in collected] == [(m.step, m.value, m.timestamp) for m in full]

    bulk = store.get_metric_history_bulk_interval_from_steps(run_id, "loss", steps=[0, 10, 50, 99], max_results=3)
    assert [(m.step, m.value, m.run_id) for m in bulk] == [(0, 0.0, run_id), (10, 1.0, run_id), (50, 5.0, run_id)]

    sampled = store.get_metric_history_bulk_interval([run_id], "loss", max_results=10, start_step=None, end_step=None)
    steps = [m.step for m in sampled]
    assert steps[0] == 0 and steps[-1] == 99 and 10 <= len(steps) <= 12
    assert all(m.value == m.step / 10 and m.run_id == run_id for m in sampled)
    window = store.get_metric_history_bulk_interval([run_id], "loss", max_results=5, start_step=20, end_step=29)
    assert [m.step for m in window] == [20, 22, 24, 26, 29]  # what MLflow's SQL store samples for this window


def test_latest_metric_is_max_step_then_timestamp_then_value(tracking_uri):
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("x", 5.0, 100, 3), Metric("x", 9.0, 50, 1), Metric("x", 7.0, 100, 3),
                                      Metric("x", 1.0, 10, 3)])
    assert client.get_run(run_id).data.metrics["x"] == 7.0


def test_log_inputs_with_mlflow_datasets(tracking_uri):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    dataset = mlflow.data.from_pandas(frame, name="train-frame", targets="b")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "train"})
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    got = inputs[0]
    assert got.dataset.name == "train-frame"
    assert got.dataset.digest == dataset.digest
    assert got.dataset.source_type == "code"
    assert {t.key: t.value for t in got.tags} == {"mlflow.data.context": "training", "split": "train"}
    found = mlflow.search_runs(filter_string="dataset.context = 'training' AND dataset.name = 'train-frame'",
                               output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_nan_and_infinite_metrics_round_trip(tracking_uri):
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "nan", float("nan"))
    client.log_metric(run_id, "pinf", float("inf"))
    client.log_metric(run_id, "ninf", float("-inf"))
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] == math.inf and metrics["ninf"] == -math.inf


def test_runs_survive_reopening_the_root(tracking_uri, root):
    from sparkml_ops.lake import Lake, parse_root

    with mlflow.start_run() as run:
        mlflow.log_param("p", "v")
        mlflow.log_metric("m", 3.0)
    Lake.opened(parse_root(tracking_uri)).close()
    reopened = DeltaTrackingStore(tracking_uri)
    got = reopened.get_run(run.info.run_id)
    assert got.data.params == {"p": "v"} and got.data.metrics == {"m": 3.0}
    assert got.info.status == RunStatus.to_string(RunStatus.FINISHED)
