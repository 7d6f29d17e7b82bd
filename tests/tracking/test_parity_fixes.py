"""Regressions from issue 15: calls that behaved differently from MLflow's own stores."""

from __future__ import annotations

import mlflow
import mlflow.sklearn
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, Metric
from mlflow.entities.logged_model_parameter import LoggedModelParameter
from mlflow.exceptions import MlflowException
from mlflow.utils.uri import append_to_uri_path
from sklearn.linear_model import LogisticRegression


def test_log_model_params_fluent_and_client(tracking_uri, store):
    client = MlflowClient()
    model = client.create_logged_model(experiment_id="0", name="m", params={"a": "1"})
    client.log_model_params(model.model_id, {"b": "2", "c": 3})
    mlflow.log_model_params({"d": "4"}, model_id=model.model_id)
    assert client.get_logged_model(model.model_id).params == {"a": "1", "b": "2", "c": "3", "d": "4"}
    with pytest.raises(MlflowException, match="Logged model with ID 'm-nope' not found") as err:
        store.log_logged_model_params("m-nope", [LoggedModelParameter("x", "1")])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_logged_model_without_metrics_has_an_empty_list_and_dataset_search_works(tracking_uri, store):
    model = store.create_logged_model("0", name="plain")
    assert store.get_logged_model(model.model_id).metrics == []
    found = store.search_logged_models(["0"], datasets=[{"dataset_name": "train"}])
    assert list(found) == []
    assert [m.model_id for m in store.search_logged_models(["0"])] == [model.model_id]


@pytest.mark.parametrize("location", ["file:///tmp/i15/arts?driver=x", "file:///tmp/i15/arts#frag",
                                      "s3://bucket/path?versionId=3"])
def test_artifact_location_with_query_or_fragment_is_joined_like_mlflow(store, location):
    experiment_id = store.create_experiment("q", artifact_location=location)
    run = store.create_run(experiment_id, "u", 1, [], "r")
    assert run.info.artifact_uri == append_to_uri_path(location, run.info.run_id, "artifacts")
    assert store.get_run(run.info.run_id).info.artifact_uri == run.info.artifact_uri
    model = store.create_logged_model(experiment_id, name="m")
    assert model.artifact_location == append_to_uri_path(location, "models", model.model_id, "artifacts")


def test_relative_artifact_location_is_made_absolute(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    experiment_id = store.create_experiment("rel", artifact_location="some/dir")
    location = store.get_experiment(experiment_id).artifact_location
    assert location == str(tmp_path / "some" / "dir")


def test_dataset_inputs_come_back_in_logging_order(store):
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id
    digests = ["zz", "aa", "mm"]
    for digest in digests:
        store.log_inputs(run_id, [DatasetInput(Dataset(f"d-{digest}", digest, "local", "src"), [])])
    got = [d.dataset.digest for d in store.get_run(run_id).inputs.dataset_inputs]
    assert got == digests
    [many] = [r for r in store.search_runs(["0"], None, 1) if r.info.run_id == run_id]
    assert [d.dataset.digest for d in many.inputs.dataset_inputs] == digests


def test_bad_metric_value_names_parameter_value(store):
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id
    with pytest.raises(MlflowException, match=r"^Invalid value \"x\" for parameter 'value' supplied"):
        store.log_metric(run_id, Metric("m", "x", 1, 0))
    with pytest.raises(MlflowException, match=r"for parameter 'metrics\[0\].value'"):
        store.log_batch(run_id, [Metric("m", "x", 1, 0)], [], [])


def test_duplicate_experiment_name_worded_like_mlflow(store):
    store.create_experiment("twice")
    with pytest.raises(MlflowException, match=r"^Experiment\(name=twice\) already exists") as err:
        store.create_experiment("twice")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_metric_history_has_no_model_linked_copy(tracking_uri):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
    with mlflow.start_run() as run:
        MlflowClient().log_batch(run.info.run_id, [Metric("loss", 1.0 / (s + 1), 1_000 + s, s)
                                                   for s in range(1000)])
        info = mlflow.sklearn.log_model(model, name="model",
                                        pip_requirements=mlflow.sklearn.get_default_pip_requirements())
    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, "loss")
    assert len(history) == 1000
    assert {m.model_id for m in history} == {None}
    sampled = client._tracking_client.store.get_metric_history_bulk_interval([run.info.run_id], "loss", 5000,
                                                                             None, None)
    assert len(sampled) == 1000
    assert client.get_run(run.info.run_id).data.metrics["loss"] == 1.0 / 1000
    assert [m.key for m in client.get_logged_model(info.model_id).metrics] == ["loss"]
