"""The one predictor registry: one fast-path policy for scikit-learn and ONNX, checked against pyfunc at load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sparkml_ops.models.predictors import LoadOptions, load_predictor
from tests.models.conftest import FEATURES, features, labels


def _save_onnx(model, X: pd.DataFrame, path: Path, outputs=None) -> Path:
    import mlflow.onnx

    from sparkml_ops.models.onnx_convert import onnx_signature, sklearn_to_onnx

    onnx_model = sklearn_to_onnx(model, X)
    mlflow.onnx.save_model(onnx_model, str(path), signature=onnx_signature(onnx_model, list(X.columns), X, outputs))
    return path


def test_onnx_takes_its_backend_and_the_rest_server_answers_as_mlflow_does(tmp_path):
    from mlflow.pyfunc import scoring_server
    from sklearn.ensemble import RandomForestRegressor

    from sparkml_ops.models.serving.payload import json_to_matrix
    from sparkml_ops.models.serving.predictor import ServedModel, encode_predictions

    X = features(200, seed=1)
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, X.f0 * 2 + X.f1)
    served = ServedModel(str(_save_onnx(model, X, tmp_path / "m")))
    assert (served.predictor.kind, served.fast_reason) == ("onnx", "")
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": X.head(5).to_numpy().tolist()}})
    matrix, _ = json_to_matrix(json.loads(body), served.fast)
    ours = json.loads(encode_predictions(served.predict_matrix(matrix)))
    theirs = scoring_server.invocations(body, "application/json", served.pyfunc, served.input_schema)
    assert ours == json.loads(theirs.response)  # MLflow's server answers records of every ONNX output


def test_onnx_outputs_pyfunc_cannot_frame_keep_the_onnx_backend(tmp_path):
    """MLflow's ONNX wrapper fails on a label + probabilities graph; the same graph's runtime scores it."""
    from sklearn.linear_model import LogisticRegression

    X = features(200, seed=2)
    model = LogisticRegression().fit(X, labels(X))
    predictor = load_predictor(_save_onnx(model, X, tmp_path / "m"), LoadOptions())
    assert predictor.kind == "onnx"
    with pytest.raises(ValueError):
        predictor.pyfunc.predict(X.head(3))
    out = predictor.predict_arrays([pa.array(X[c]) for c in FEATURES], FEATURES)
    assert sorted(out) == ["label", "probabilities"]
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-5)


def test_sklearn_backend_is_checked_against_pyfunc_and_fast_false_keeps_pyfunc(tmp_path, allow_pickle):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    X = features(100, seed=3)
    y = X.f0 * 3 - X.f2
    arrays = [pa.array(X[c]) for c in FEATURES]
    for name, columns in (("same", FEATURES), ("reordered", ["f3", "f2", "f1", "f0"])):
        model = LinearRegression().fit(X[columns], y)
        mlflow.sklearn.save_model(model, str(tmp_path / name), signature=infer_signature(X, y),
                                  serialization_format="cloudpickle")
    fast = load_predictor(tmp_path / "same", LoadOptions(allow_pickle=True))
    assert (fast.kind, fast.reason) == ("sklearn", "")
    slow = load_predictor(tmp_path / "same", LoadOptions(fast=False, allow_pickle=True))
    assert (slow.kind, slow.reason) == ("pyfunc", "disabled by option")
    np.testing.assert_allclose(fast.predict_arrays(arrays, FEATURES), slow.predict_arrays(arrays, FEATURES),
                               rtol=1e-12)
    # pyfunc itself refuses a model fitted on its columns in another order: the direct call is not trusted either
    refused = load_predictor(tmp_path / "reordered", LoadOptions(allow_pickle=True))
    assert refused.kind == "pyfunc" and "could not compare the fast path with pyfunc" in refused.reason
