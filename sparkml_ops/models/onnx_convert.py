"""scikit-learn → ONNX → MLflow's ``onnx`` flavor, with a signature our UDF can bind by name.

The converted graph takes one float32 matrix, so the signature lists the original feature
names as ``double`` columns (Spark's type; the UDF builds the float32 matrix) and one output
column per kept ONNX output (``label``, ``probabilities`` for classifiers — ZipMap is turned
off so probabilities are a plain tensor; ``variable`` for regressors). Scoring goes through
the same UDF as any model: onnxruntime on the Arrow batch, no pandas.

Parity: ONNX computes in float32 where scikit-learn uses float64 (trees compare float32
features in both), so probabilities agree within ``PROBABILITY_TOLERANCE`` and labels agree
except for rows whose probability is within that distance of the decision threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sparkml_ops.errors import BadInput

PROBABILITY_TOLERANCE = 1e-5


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def sklearn_to_onnx(model: Any, sample: Any, *, target_opset: int | None = None):
    """An ``onnx.ModelProto`` for a fitted estimator or pipeline; ``sample`` fixes the input width."""
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier

    X = np.asarray(sample, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise BadInput(f"sample must be a non-empty 2-D array of features, got shape {X.shape}")
    final = _final_estimator(model)
    options = {id(final): {"zipmap": False}} if is_classifier(final) else None
    try:
        return to_onnx(model, X[:1], options=options, target_opset=target_opset)
    except Exception as exc:
        raise BadInput(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from exc


def onnx_signature(onnx_model, feature_names: Sequence[str], sample: Any, outputs: Sequence[str] | None = None):
    """Inputs: named ``double`` columns; outputs: the kept ONNX outputs, typed by running the model once."""
    import onnxruntime as ort
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, Schema, TensorSpec

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    available = [o.name for o in session.get_outputs()]
    kept = list(outputs) if outputs else available
    unknown = [o for o in kept if o not in available]
    if unknown:
        raise BadInput(f"outputs {unknown} are not outputs of the ONNX model; it has {available}")
    X = np.asarray(sample, dtype=np.float32)[:2]
    results = dict(zip(available, session.run(available, {session.get_inputs()[0].name: X}), strict=False))
    specs: list[ColSpec | TensorSpec] = []
    for name in kept:
        value = np.asarray(results[name])
        base = DataType.from_numpy_type(value.dtype) or DataType.double
        width = value.shape[1] if value.ndim == 2 else 1
        specs.append(ColSpec(Array(base) if value.ndim == 2 and width > 1 else base, name))
    inputs = Schema([ColSpec("double", str(n)) for n in feature_names])
    return ModelSignature(inputs=inputs, outputs=Schema(specs))


def log_sklearn_as_onnx(model: Any, sample: Any, *, name: str = "model", feature_names: Sequence[str] | None = None,
                        outputs: Sequence[str] | None = None, pip_requirements: Sequence[str] | None = None,
                        **log_kwargs: Any):
    """Convert ``model`` and log it with ``mlflow.onnx``; returns MLflow's ``ModelInfo``."""
    import mlflow.onnx

    from sparkml_ops.envs import pinned_current

    names = list(feature_names) if feature_names is not None else [str(c) for c in getattr(sample, "columns", [])]
    width = np.asarray(sample).shape[1]
    if not names:
        names = [f"f{i}" for i in range(width)]
    if len(names) != width:
        raise BadInput(f"feature_names has {len(names)} names for {width} features")
    onnx_model = sklearn_to_onnx(model, sample)
    signature = onnx_signature(onnx_model, names, sample, outputs)
    reqs = list(pip_requirements) if pip_requirements is not None else pinned_current(
        ["mlflow-skinny", "onnx", "onnxruntime", "numpy"])
    return mlflow.onnx.log_model(onnx_model, name=name, signature=signature, pip_requirements=reqs, **log_kwargs)
