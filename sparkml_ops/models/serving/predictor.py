"""The loaded model, with a numpy fast path for scikit-learn models and MLflow's pyfunc path for the rest.

Most of ``mlflow models serve``'s per-request cost is building a DataFrame, pyfunc schema
enforcement and pandas → numpy conversion. For a scikit-learn model (MLflow's ``sklearn``
pyfunc wrapper) whose signature is a fixed list of numeric inputs we check requests against
the signature ourselves and call the estimator's method on a numpy matrix. The fast path
is only switched on after it gave the same output as ``pyfunc.predict`` on the model's
input example (or synthetic rows) at load time; otherwise every request takes MLflow's path.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import numpy as np
import orjson

from sparkml_ops.models.serving.http_errors import PayloadError
from sparkml_ops.models.serving.payload import json_to_matrix, read_table
from sparkml_ops.models.spec import MatrixSpec, input_spec

_log = logging.getLogger(__name__)
_FAST_METHODS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba")
_MLFLOW_MEDIA = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _estimator_method(pyfunc_model) -> tuple[object | None, Callable | None, str]:
    """The scikit-learn estimator and the method pyfunc ``predict`` calls, if it is that simple."""
    try:
        from mlflow.sklearn import _SklearnModelWrapper
    except ImportError:  # pragma: no cover - mlflow-skinny always ships the flavor
        return None, None, "mlflow.sklearn is not importable"
    impl = pyfunc_model._model_impl
    if not isinstance(impl, _SklearnModelWrapper):
        return None, None, f"the pyfunc implementation is {type(impl).__name__}, not MLflow's scikit-learn wrapper"
    estimator = impl.get_raw_model()
    fn = pyfunc_model._predict_fn
    if getattr(fn, "__func__", None) is _SklearnModelWrapper.predict:
        return estimator, estimator.predict, ""
    if getattr(fn, "__self__", None) is estimator and getattr(fn, "__name__", "") in _FAST_METHODS:
        return estimator, fn, ""
    return None, None, f"pyfunc predict_fn {getattr(fn, '__name__', fn)!r} is not a plain estimator method"


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(a, b))


def encode_predictions(output) -> bytes:
    """``{"predictions": [...]}`` for a model output, as MLflow's server writes it."""
    if isinstance(output, np.ndarray) and output.dtype == np.float32:
        output = output.astype(np.float64)  # MLflow's tolist() widens float32 the same way
    try:
        return orjson.dumps({"predictions": output}, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # object arrays (string labels), pandas outputs: MLflow's own encoder
        from mlflow.pyfunc.scoring_server import predictions_to_json

        out = StringIO()
        predictions_to_json(output, out)
        return out.getvalue().encode()


class ServedModel:
    """A pyfunc model loaded once per worker, with its fast path decided at load time."""

    def __init__(self, path: str, *, fast_path: bool = True) -> None:
        import mlflow.pyfunc

        self.path = path
        self.pyfunc = mlflow.pyfunc.load_model(path)
        self.metadata = self.pyfunc.metadata
        self.input_schema = self.metadata.get_input_schema()
        self.params_schema = self.metadata.get_params_schema()
        self.fast: MatrixSpec | None = None
        self._method: Callable | None = None
        self.fast_reason = "disabled by option" if not fast_path else ""
        if fast_path:
            self._setup_fast_path()

    # -- fast path -----------------------------------------------------------------------------
    def _setup_fast_path(self) -> None:
        estimator, method, why = _estimator_method(self.pyfunc)
        if method is None:
            self.fast_reason = why
            return
        order = getattr(estimator, "feature_names_in_", None)
        schema, why = input_spec(self.metadata).matrix(None if order is None else [str(n) for n in order])
        if schema is None:
            self.fast_reason = why
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            why = self._verify(schema, method)
        if why:
            self.fast_reason = why
            _log.warning("fast path off: %s", why)
            return
        if order is not None:
            # The estimator was fitted on named columns; we hand it a matrix in that order.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
        self.fast, self._method = schema, method

    def _example(self, schema: MatrixSpec):
        """(matrix, pyfunc input) from the saved serving example, else a few synthetic rows."""
        from mlflow.pyfunc.scoring_server import _parse_json_data

        info = getattr(self.metadata, "saved_input_example_info", None) or {}
        example = info.get("serving_input_path")
        if example and (Path(self.path) / example).is_file():
            text = (Path(self.path) / example).read_text()
            try:
                matrix, _ = json_to_matrix(json.loads(text), schema)
                data = _parse_json_data(text, self.metadata, self.input_schema).data
                return matrix, data
            except Exception as exc:  # the example may use a form the fast path does not take
                _log.info("serving example not usable for the fast-path check: %s", exc)
        matrix = np.vstack([np.zeros(schema.width), np.ones(schema.width),
                            np.arange(schema.width) % 7 - 3.0]).astype(schema.dtype)
        if schema.names is None:
            return matrix, matrix
        import pandas as pd

        dtypes = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}
        frame = pd.DataFrame({n: matrix[:, j].astype(dtypes[schema.type_names[j]])
                              for j, n in enumerate(schema.names)})
        return matrix, frame

    def _verify(self, schema: MatrixSpec, method: Callable) -> str:
        try:
            matrix, data = self._example(schema)
            expected = self.pyfunc.predict(data)
            got = method(matrix)
        except Exception as exc:
            return f"could not compare the fast path with pyfunc predict: {type(exc).__name__}: {exc}"
        if not _same(got, expected):
            return "the fast path's output differs from pyfunc predict on the input example"
        return ""

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The estimator's output for a checked input matrix (one row per input row)."""
        assert self._method is not None, "predict_matrix is called for fast-path models only"
        return self._method(matrix)

    def check_params(self, params: dict | None) -> None:
        """Validate ``params`` against the signature's params schema, as pyfunc predict would."""
        if not params:
            return
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import _validate_params

        try:
            _validate_params(params, self.metadata)
        except MlflowException as exc:
            raise PayloadError(f"params: {exc.message}") from None

    def decode_fast(self, obj) -> np.ndarray:
        assert self.fast is not None, "decode_fast is called for fast-path models only"
        matrix, params = json_to_matrix(obj, self.fast)
        self.check_params(params)
        return matrix

    # -- MLflow's path ---------------------------------------------------------------------------
    def invoke_general(self, kind: str, body: bytes) -> tuple[bytes, int, str]:
        """Score a request through MLflow's own parsing, schema enforcement and pyfunc predict."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import BAD_REQUEST
        from mlflow.pyfunc import scoring_server

        try:
            if kind in _MLFLOW_MEDIA:
                result = scoring_server.invocations(body, _MLFLOW_MEDIA[kind], self.pyfunc, self.input_schema)
                return result.response.encode(), result.status, result.mimetype
            frame = read_table(kind, body).to_pandas()
            try:
                raw = self.pyfunc.predict(frame)
            except MlflowException:
                raise
            except Exception as exc:
                raise MlflowException(f"the model failed on this input: {type(exc).__name__}: {exc}",
                                      error_code=BAD_REQUEST) from exc
            out = StringIO()
            scoring_server.predictions_to_json(raw, out)
            return out.getvalue().encode(), 200, "application/json"
        except PayloadError:
            raise
        except MlflowException as exc:
            status = exc.get_http_status_code()
            return exc.serialize_as_json().encode(), (400 if status >= 500 else status), "application/json"

    # -- description -----------------------------------------------------------------------------
    def describe(self) -> dict:
        """What ``/metadata`` reports: signature, input example, flavors, fast-path state."""
        meta = self.metadata
        signature = meta.signature.to_dict() if meta.signature is not None else None
        if signature:
            signature = {k: (json.loads(v) if isinstance(v, str) else v) for k, v in signature.items()}
        example = None
        info = getattr(meta, "saved_input_example_info", None) or {}
        serving_path = info.get("serving_input_path")
        if serving_path and (Path(self.path) / serving_path).is_file():
            example = json.loads((Path(self.path) / serving_path).read_text())
        return {
            "model_id": getattr(meta, "model_id", None),
            "run_id": meta.run_id,
            "flavors": sorted(meta.flavors),
            "loader_module": meta.flavors.get("python_function", {}).get("loader_module"),
            "signature": signature,
            "input_example": example,
            "mlflow_version": meta.mlflow_version,
            "fast_path": self.fast is not None,
            "fast_path_reason": self.fast_reason or None,
            "pid": os.getpid(),
        }
