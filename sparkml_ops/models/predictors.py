"""Load an MLmodel directory into something that scores Arrow columns, choosing the shortest path.

- scikit-learn models with numeric inputs: the estimator's own ``predict`` (or the logged
  ``predict_fn``) on one float matrix — no pandas, no per-batch schema enforcement;
- ONNX models: an onnxruntime session fed the matrix (or one array per named input);
- anything else: MLflow's pyfunc on a pandas DataFrame with the signature's column names.

``fast=False`` forces the pyfunc path (what MLflow itself would do).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sparkml_ops.models.arrow_io import column_to_numpy, to_frame, to_matrix

_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_,
}


@contextlib.contextmanager
def allow_unpickling(allowed: bool) -> Iterator[None]:
    """Lets MLflow unpickle model files during a load when the driver allowed it."""
    key = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    previous = os.environ.get(key)
    if allowed:
        os.environ[key] = "true"
    try:
        yield
    finally:
        if allowed:
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous


class Predictor:
    kind = "pyfunc"

    def predict(self, arrays: Sequence[pa.Array]) -> Any:
        raise NotImplementedError


class SklearnPredictor(Predictor):
    kind = "sklearn"

    def __init__(self, path: Path, meta, dtype: str | None) -> None:
        import mlflow.sklearn

        model = mlflow.sklearn.load_model(str(path))
        fn_name = meta.flavors.get("python_function", {}).get("predict_fn") or "predict"
        self._fn = getattr(model, fn_name)
        # scikit-learn's trees compare float32 features: hand them float32 and skip its copy
        self._dtype = np.dtype("float32") if dtype is None and _is_tree_model(model) else np.dtype(dtype or "float64")

    def predict(self, arrays: Sequence[pa.Array]) -> Any:
        X = to_matrix(arrays, self._dtype)
        with warnings.catch_warnings():
            # fitted on a DataFrame, scored on the same columns as a matrix: the warning is noise
            warnings.filterwarnings("ignore", message=".*feature names.*")
            return self._fn(X)


def _is_tree_model(model: Any) -> bool:
    """A single tree or an ensemble of trees (not a pipeline: earlier steps may need float64)."""
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, BaseDecisionTree):
        return True
    trees = getattr(model, "estimators_", None)
    if isinstance(trees, np.ndarray):
        trees = trees.ravel().tolist()
    return isinstance(trees, list) and bool(trees) and all(isinstance(t, BaseDecisionTree) for t in trees)


class OnnxPredictor(Predictor):
    kind = "onnx"

    def __init__(self, path: Path, meta, input_names: Sequence[str], threads: int) -> None:
        import onnxruntime as ort

        conf = meta.flavors["onnx"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        providers = [p for p in conf.get("providers") or ["CPUExecutionProvider"]
                     if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(str(path / conf["data"]), sess_options=options, providers=providers)
        self._inputs = self._session.get_inputs()
        wanted = _signature_output_names(meta)
        available = [o.name for o in self._session.get_outputs()]
        chosen = [n for n in wanted if n in available] if wanted else []
        self._outputs = chosen or available
        self._names = list(input_names)

    def predict(self, arrays: Sequence[pa.Array]) -> Any:
        if len(self._inputs) == 1:
            spec = self._inputs[0]
            feed = {spec.name: to_matrix(arrays, _ORT_DTYPES.get(spec.type, np.float32))}
        else:
            by_name = dict(zip(self._names, arrays, strict=False))
            feed = {}
            for spec in self._inputs:
                column = column_to_numpy(by_name[spec.name]).astype(_ORT_DTYPES.get(spec.type, np.float32), copy=False)
                feed[spec.name] = column.reshape(-1, 1) if len(spec.shape or ()) == 2 else column
        results = self._session.run(self._outputs, feed)
        if len(results) == 1:
            return results[0]
        return dict(zip(self._outputs, results, strict=False))


class PyfuncPredictor(Predictor):
    kind = "pyfunc"

    def __init__(self, path: Path, input_kind: str, names: Sequence[str], dtype: str | None) -> None:
        import mlflow.pyfunc

        self._model = mlflow.pyfunc.load_model(str(path))
        self._kind = input_kind
        self._names = list(names)
        self._dtype = dtype

    def predict(self, arrays: Sequence[pa.Array]) -> Any:
        if self._kind == "tensor":
            return self._model.predict(to_matrix(arrays, self._dtype or "float64"))
        return self._model.predict(to_frame(arrays, self._names))


def _signature_output_names(meta) -> list[str]:
    schema = meta.get_output_schema()
    if schema is None:
        return []
    return [str(s.name) for s in schema.inputs if s.name is not None]


def load_predictor(path: Path, handle) -> Predictor:
    """The fastest predictor that gives the same answers as MLflow's pyfunc for this model."""
    from mlflow.models import Model

    meta = Model.load(str(path / "MLmodel"))
    flavors = meta.flavors
    loader = flavors.get("python_function", {}).get("loader_module")
    numeric = handle.input_kind == "tensor" or (handle.input_kind == "columns" and handle.numeric)
    with allow_unpickling(handle.allow_pickle):
        if handle.fast and "onnx" in flavors:
            return OnnxPredictor(path, meta, handle.input_names, handle.onnx_threads)
        if handle.fast and "sklearn" in flavors and loader == "mlflow.sklearn" and numeric:
            return SklearnPredictor(path, meta, handle.tensor_dtype if handle.input_kind == "tensor" else None)
        return PyfuncPredictor(path, handle.input_kind, handle.input_names,
                               handle.tensor_dtype if handle.input_kind == "tensor" else None)
