"""Fixtures for the model-scoring tests: real models logged through the ``delta:`` store.

Nothing here is autouse (tests/models/serving shares this directory); modules opt in with
``pytestmark = pytest.mark.usefixtures("allow_pickle")``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

FEATURES = ["f0", "f1", "f2", "f3"]
SKLEARN_REQS = ["mlflow-skinny==3.17.2", "scikit-learn==1.9.1", "cloudpickle==3.1.3"]


@pytest.fixture
def allow_pickle(monkeypatch):
    """MLflow refuses to unpickle model files unless this is set (our UDF forwards it to workers)."""
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


def features(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((n, len(FEATURES))), columns=FEATURES)


def labels(X: pd.DataFrame) -> np.ndarray:
    return ((X.f0 + X.f1 - X.f2) > 0.5).astype(np.int64).to_numpy()


def log_sklearn(model, X: pd.DataFrame, name: str = "model", requirements=None):
    """Log ``model`` with a signature inferred from ``X``; returns MLflow's ModelInfo."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    return mlflow.sklearn.log_model(model, name=name, signature=infer_signature(X, model.predict(X)),
                                    serialization_format="cloudpickle",
                                    pip_requirements=list(requirements or SKLEARN_REQS))


@pytest.fixture
def lr_model(tracking_uri, allow_pickle):
    """(ModelInfo, run id, fitted LogisticRegression, training frame) logged in one run."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    X = features()
    model = LogisticRegression().fit(X, labels(X))
    with mlflow.start_run() as run:
        info = log_sklearn(model, X)
    return info, run.info.run_id, model, X
