"""``models:/name/<version|latest|stage>`` and ``models:/name@alias`` resolve through the registry:
in our resolver (spark_udf, score, the CLI and the server use it) and in MLflow's own loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparkml_ops.errors import NotFound
from sparkml_ops.models import resolve_model
from tests.models import pyfunc_models

pytestmark = pytest.mark.usefixtures("allow_pickle")


@pytest.fixture
def allow_pickle(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


@pytest.fixture
def fraud(tracking_uri):
    """Two registered versions of 'fraud' (offsets 0 and 100), @champion on version 1."""
    import mlflow

    infos = []
    for offset in (0.0, 100.0):
        with mlflow.start_run():
            info = pyfunc_models.log_pyfunc(pyfunc_models.EchoSum(offset), pyfunc_models.scalar_signature())
        mlflow.register_model(info.model_uri, "fraud")
        infos.append(info)
    mlflow.MlflowClient().set_registered_model_alias("fraud", "champion", 1)
    return infos


def test_registry_uris_resolve_to_versions(fraud):
    import mlflow

    first, second = fraud
    one = resolve_model("models:/fraud/1")
    assert (one.registered_name, one.registered_version, one.model_id) == ("fraud", 1, first.model_id)
    assert resolve_model("models:/fraud@champion").registered_version == 1
    assert "fraud v1" in resolve_model("models:/fraud@champion").label
    latest = resolve_model("models:/fraud/latest")
    assert (latest.registered_version, latest.model_id) == (2, second.model_id)
    mlflow.MlflowClient().transition_model_version_stage("fraud", 1, "Production")
    assert resolve_model("models:/fraud/Production").registered_version == 1
    mlflow.MlflowClient().set_registered_model_alias("fraud", "champion", 2)  # the alias moves
    moved = resolve_model("models:/fraud@champion")
    assert (moved.registered_version, moved.digest) == (2, latest.digest)
    assert resolve_model(f"models:/{first.model_id}").registered_version is None  # a logged model, unregistered


def test_mlflow_loads_registry_uris_through_our_store(fraud):
    import mlflow.pyfunc

    frame = pd.DataFrame({f"f{i}": [1.0, 2.0] for i in range(4)})
    by_alias = mlflow.pyfunc.load_model("models:/fraud@champion").predict(frame)
    by_version = mlflow.pyfunc.load_model("models:/fraud/2").predict(frame)
    np.testing.assert_allclose(np.asarray(by_version) - np.asarray(by_alias), 100.0)


def test_registry_errors_name_the_uri(fraud):
    with pytest.raises(NotFound, match="'models:/fraud/9' is not in the model registry"):
        resolve_model("models:/fraud/9")
    with pytest.raises(NotFound, match="alias nobody not found"):
        resolve_model("models:/fraud@nobody")
    with pytest.raises(NotFound, match="Registered Model with name=nope not found"):
        resolve_model("models:/nope@champion")
