"""MLflow 3's LoggedModel API and scikit-learn ``log_model``/``load_model`` through ``delta:``."""

from __future__ import annotations

import mlflow
import mlflow.sklearn
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from sparkml_ops.errors import NotFound


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(int)
    return LogisticRegression().fit(features, labels), features


def _log(model, **kwargs):
    return mlflow.sklearn.log_model(
        model, name="model", pip_requirements=mlflow.sklearn.get_default_pip_requirements(), **kwargs
    )


def _user_tags(model) -> dict[str, str]:
    return {k: v for k, v in model.tags.items() if not k.startswith("mlflow.")}


def test_log_model_then_load_through_runs_and_models_uris(tracking_uri, fitted):
    model, features = fitted
    mlflow.set_experiment("models")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        info = _log(model)
    expected = model.predict_proba(features)

    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run.info.run_id
    assert logged.name == "model"
    assert logged.experiment_id == run.info.experiment_id

    outputs = mlflow.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]

    for uri in (f"runs:/{run.info.run_id}/model", f"models:/{info.model_id}", info.model_uri):
        loaded = mlflow.sklearn.load_model(uri)
        np.testing.assert_array_equal(loaded.predict_proba(features), expected)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    np.testing.assert_array_equal(pyfunc.predict(features), model.predict(features))


def test_search_get_tag_and_delete_logged_models(tracking_uri, fitted):
    model, _ = fitted
    client = MlflowClient()
    exp_id = mlflow.set_experiment("search-models").experiment_id
    ids = []
    for c in (0.1, 1.0, 10.0):
        with mlflow.start_run():
            info = _log(model, params={"C": str(c)}, tags={"family": "linear"})
            mlflow.log_metric("auc", c / 10, model_id=info.model_id)
            ids.append(info.model_id)

    found = mlflow.search_logged_models(experiment_ids=[exp_id], output_format="list")
    assert sorted(m.model_id for m in found) == sorted(ids)
    best = mlflow.search_logged_models(experiment_ids=[exp_id], filter_string="params.C = '10.0'",
                                       output_format="list")
    assert [m.model_id for m in best] == [ids[2]]
    ordered = mlflow.search_logged_models(experiment_ids=[exp_id], order_by=[{"field_name": "metrics.auc",
                                                                              "ascending": False}],
                                          output_format="list")
    assert [m.model_id for m in ordered] == ids[::-1]
    assert ordered[0].metrics[0].key == "auc" and ordered[0].metrics[0].value == 1.0

    page = client.search_logged_models(experiment_ids=[exp_id], max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_logged_models(experiment_ids=[exp_id], max_results=2, page_token=page.token)
    assert sorted([m.model_id for m in page] + [m.model_id for m in rest]) == sorted(ids)

    target = ids[0]
    client.set_logged_model_tags(target, {"stage": "candidate", "family": "glm"})
    assert _user_tags(client.get_logged_model(target)) == {"family": "glm", "stage": "candidate"}
    client.delete_logged_model_tag(target, "stage")
    assert _user_tags(client.get_logged_model(target)) == {"family": "glm"}
    assert client.get_logged_model(target).params == {"C": "0.1"}

    client.delete_logged_model(target)
    with pytest.raises(MlflowException) as err:
        client.get_logged_model(target)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    remaining = mlflow.search_logged_models(experiment_ids=[exp_id], output_format="list")
    assert sorted(m.model_id for m in remaining) == sorted(ids[1:])


def test_logged_model_created_directly_and_finalized(tracking_uri, store):
    client = MlflowClient()
    model = client.create_logged_model("0", name="bare", model_type="custom", params={"k": "v"})
    assert model.status == LoggedModelStatus.PENDING
    assert client.get_logged_model(model.model_id).params == {"k": "v"}
    done = client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
    assert done.status == LoggedModelStatus.FAILED
    assert store.get_logged_model(model.model_id).model_type == "custom"


def test_unknown_logged_model_is_not_found(tracking_uri, store):
    with pytest.raises(NotFound):
        store.get_logged_model("m-does-not-exist")
    with pytest.raises(NotFound):
        store.delete_logged_model_tag("m-does-not-exist", "k")
