"""Models whose artifacts live in Delta: log, load through runs:/ and models:/, predict the same."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from sparkml_ops.tracking.artifact_uri import is_artifact_uri


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int)
    return X, y


def _check_logged(info, X, expected) -> None:
    """Both URIs load and predict ``expected``; signature and input example are stored."""
    model = mlflow.get_logged_model(info.model_id)
    assert is_artifact_uri(model.artifact_location)
    for uri in (f"runs:/{info.run_id}/model", f"models:/{info.model_id}"):
        loaded = mlflow.pyfunc.load_model(uri)
        got = loaded.predict(X)
        np.testing.assert_array_equal(np.asarray(got).reshape(np.asarray(expected).shape), expected)
        assert loaded.metadata.signature is not None
        assert loaded.metadata.get_input_schema().input_names() == list(X.columns)
        example = loaded.metadata.load_input_example(mlflow.artifacts.download_artifacts(uri))
        assert example is not None and list(example.columns) == list(X.columns)


@pytest.mark.parametrize("serialization", ["cloudpickle", "skops"])
def test_sklearn_model(tracking_uri, data, serialization):
    X, y = data
    estimator = RandomForestClassifier(n_estimators=5, random_state=0) if serialization == "skops" \
        else LogisticRegression()
    estimator.fit(X, y)
    expected = estimator.predict(X)
    extra = {}
    if serialization == "skops":
        import skops.io

        extra["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(estimator, name="model", serialization_format=serialization,
                                        input_example=X.head(3), signature=infer_signature(X, expected),
                                        pip_requirements=["scikit-learn"], **extra)
    _check_logged(info, X, expected)
    native = mlflow.sklearn.load_model(f"models:/{info.model_id}")
    np.testing.assert_array_equal(native.predict_proba(X), estimator.predict_proba(X))


class Doubler(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["offset"]) as handle:
            self.offset = float(handle.read())

    def predict(self, context, model_input, params=None):
        return model_input.sum(axis=1) * 2 + self.offset


def test_custom_pyfunc_with_artifacts(tracking_uri, data, tmp_path):
    X, _ = data
    offset = tmp_path / "offset.txt"
    offset.write_text("0.5")
    expected = (X.sum(axis=1) * 2 + 0.5).to_numpy()
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), artifacts={"offset": str(offset)},
                                       input_example=X.head(2), signature=infer_signature(X, expected),
                                       pip_requirements=["pandas"])
    _check_logged(info, X, expected)


def test_onnx_model(tracking_uri, data):
    import onnxruntime
    from skl2onnx import to_onnx

    X, y = data
    Xf = X.astype(np.float32)
    estimator = LogisticRegression().fit(Xf, y)
    onnx_model = to_onnx(estimator, Xf.to_numpy()[:1], options={"zipmap": False})
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    before = session.run(None, {session.get_inputs()[0].name: Xf.to_numpy()})[0]
    np.testing.assert_array_equal(before, estimator.predict(Xf))
    with mlflow.start_run():
        info = mlflow.onnx.log_model(onnx_model, name="model", input_example=Xf.to_numpy()[:2],
                                     signature=infer_signature(Xf.to_numpy(), {"label": before}),
                                     pip_requirements=["onnx", "onnxruntime"])
    for uri in (f"runs:/{info.run_id}/model", f"models:/{info.model_id}"):
        loaded = mlflow.pyfunc.load_model(uri)
        out = loaded.predict(Xf.to_numpy())
        np.testing.assert_array_equal(out["label"], before)
        assert loaded.metadata.signature is not None
        assert loaded.metadata.load_input_example(mlflow.artifacts.download_artifacts(uri)) is not None
        native = mlflow.onnx.load_model(uri)
        assert native.SerializeToString() == onnx_model.SerializeToString()
