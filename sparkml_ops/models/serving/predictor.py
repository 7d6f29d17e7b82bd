"""The served model: the core's predictor (:func:`~sparkml_ops.models.predictors.load_predictor`) plus MLflow's
general path for what the fast path does not take.

Most of ``mlflow models serve``'s per-request cost is building a DataFrame, pyfunc schema
enforcement and pandas → numpy conversion. When the core's fast-path policy chose a matrix
backend (scikit-learn or ONNX, checked against pyfunc at load time — the same decision the
Spark workers and the jobs take), requests are checked against the signature here and handed
to it as one numpy matrix; otherwise every request takes MLflow's path.
"""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from sparkml_ops.models.predictors import LoadOptions, allow_pickle_default, load_predictor
from sparkml_ops.models.serving.http_errors import PayloadError
from sparkml_ops.models.serving.payload import json_to_matrix, read_table
from sparkml_ops.models.spec import MatrixSpec

_MLFLOW_MEDIA = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


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
    """A model loaded once per worker process, with its backend chosen at load time."""

    def __init__(self, path: str, *, fast_path: bool = True) -> None:
        self.path = path
        options = LoadOptions(fast=fast_path, allow_pickle=allow_pickle_default(None))
        self.predictor = load_predictor(Path(path), options)
        self.pyfunc = self.predictor.pyfunc
        self.metadata = self.pyfunc.metadata
        self.input_schema = self.metadata.get_input_schema()
        self.fast: MatrixSpec | None = self.predictor.matrix
        self.fast_reason = self.predictor.reason

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        """The model's answer for a checked input matrix, as pyfunc would return it."""
        return self.predictor.predict_matrix(matrix)

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
            "predictor": self.predictor.kind,
            "fast_path": self.fast is not None,
            "fast_path_reason": self.fast_reason or None,
            "pid": os.getpid(),
        }
