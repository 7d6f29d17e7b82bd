"""Model resolution, signature → Spark types and model output → Arrow, without a JVM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.models import resolve_model, spec
from sparkml_ops.models.arrow_io import to_arrow, to_matrix
from tests.models import pyfunc_models
from tests.models.conftest import features


def test_resolve_every_model_form(lr_model, tmp_path):
    import mlflow

    info, run_id, _, _ = lr_model
    by_uri = resolve_model(info.model_uri)
    assert (by_uri.model_id, by_uri.run_id) == (info.model_id, run_id)
    assert resolve_model(run_id).digest == by_uri.digest
    assert resolve_model(f"runs:/{run_id}/model").model_id == info.model_id
    local = resolve_model(by_uri.path)
    assert local.digest == by_uri.digest and local.source_uri == by_uri.path
    assert resolve_model(info.model_uri).path == by_uri.path  # immutable models:/ downloads are cached
    with mlflow.start_run():
        newer = pyfunc_models.log_pyfunc(pyfunc_models.EchoSum(1.0), pyfunc_models.scalar_signature(), name="model")
    latest = resolve_model("logged-model:/model/latest")
    assert latest.model_id == newer.model_id and latest.source_uri == f"models:/{newer.model_id}"
    experiment_id = mlflow.get_experiment_by_name("Default").experiment_id
    pending = mlflow.MlflowClient().create_logged_model(experiment_id, name="model")  # being logged, no files yet
    assert resolve_model("logged-model:/model/latest").model_id == newer.model_id != pending.model_id


def test_resolve_errors_name_the_value(tracking_uri, tmp_path):
    with pytest.raises(BadInput, match="empty"):
        resolve_model("  ")
    with pytest.raises(BadInput, match="neither a directory"):
        resolve_model("no-such-thing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BadInput, match="not a directory with an MLmodel file"):
        resolve_model(str(tmp_path / "plain"))
    with pytest.raises(NotFound, match="no such run"):
        resolve_model("0" * 32)
    with pytest.raises(NotFound, match="not in the model registry"):
        resolve_model("models:/churn/3")
    with pytest.raises(NotFound, match="not in the model registry"):
        resolve_model("models:/churn/latest")
    with pytest.raises(NotFound, match="no finished logged model is named 'churn'"):
        resolve_model("logged-model:/churn/latest")
    with pytest.raises(BadInput, match="quotes"):
        resolve_model("logged-model:/it's/latest")
    with pytest.raises(BadInput, match="logged-model:/<name>/latest"):
        resolve_model("logged-model:/churn")


def _meta(signature):
    from mlflow.models import Model

    meta = Model()
    meta.signature = signature
    return meta


def test_signature_to_spark_types():
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import Schema, TensorSpec

    struct = spec.output_type(_meta(pyfunc_models.struct_signature()))
    assert struct.simpleString() == (
        "struct<score:double,label:bigint,vec:array<double>,info:struct<inner:struct<x:double>,n:bigint>>")
    X = features(5)
    assert spec.output_type(_meta(infer_signature(X, np.zeros(5, dtype=np.int32)))).simpleString() == "int"
    tensor = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3))]),
                            outputs=Schema([TensorSpec(np.dtype("float64"), (-1, 2, 2))]))
    assert spec.output_type(_meta(tensor)).simpleString() == "array<array<double>>"
    inputs = spec.input_spec(_meta(tensor))
    assert (inputs.kind, inputs.width, inputs.tensor_dtype, inputs.names) == ("tensor", 3, "float32", None)
    named = spec.input_spec(_meta(pyfunc_models.struct_signature()))
    assert named.names == ("f0", "f1", "f2", "f3") and named.matrix()[0] is not None
    assert spec.output_type(_meta(None)).simpleString() == "double"  # MLflow's default without a signature
    assert spec.parse_result_type("double").simpleString() == "double"


def test_model_outputs_become_arrow_of_the_result_type():
    from pyspark.sql import types as T

    struct = spec.arrow_type(spec.output_type(_meta(pyfunc_models.struct_signature())))
    frame = pyfunc_models.StructModel().predict(None, features(4))
    out = to_arrow(frame, struct, 4)
    assert out.type == struct and out[1]["info"]["inner"]["x"].as_py() == pytest.approx(frame.score[1])
    assert to_arrow(np.arange(3), pa.int32(), 3).to_pylist() == [0, 1, 2]
    nested = to_arrow(np.arange(8.0).reshape(2, 2, 2), spec.arrow_type(T.ArrayType(T.ArrayType(T.DoubleType()))), 2)
    assert nested.to_pylist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    column = to_arrow(np.array([[1.5], [2.5]]), pa.float64(), 2)  # (n, 1) regressor output
    assert column.to_pylist() == [1.5, 2.5]
    onnx_like = {"label": np.array([0, 1]), "probabilities": np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)}
    both = to_arrow(onnx_like, pa.struct([("label", pa.int64()), ("probabilities", pa.list_(pa.float32()))]), 2)
    assert both[1].as_py() == {"label": 1, "probabilities": pytest.approx([0.2, 0.8])}
    assert to_arrow(pd.Series(["a", None]), pa.string(), 2).to_pylist() == ["a", None]
    with pytest.raises(ValueError, match="returned 3 predictions for 2 rows"):
        to_arrow(np.zeros(3), pa.float64(), 2)
    with pytest.raises(TypeError, match="fractions"):
        to_arrow(np.array([0.5, 1.0]), pa.int64(), 2)
    with pytest.raises(TypeError, match="holds one"):
        to_arrow(onnx_like, pa.int64(), 2)


def test_matrix_from_arrow_columns():
    matrix = to_matrix([pa.array([1.0, 2.0]), pa.array([3, None])], "float64")
    assert matrix.shape == (2, 2) and matrix[0, 1] == 3 and np.isnan(matrix[1, 1])
