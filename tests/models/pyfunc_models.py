"""Custom pyfunc models for the scoring tests (pickled by value, so workers need not import tests/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class StructModel(PythonModel):
    """Scalar, array, struct and nested-struct outputs in one DataFrame."""

    def predict(self, context, model_input, params=None):
        s = (model_input["f0"] + model_input["f1"]).to_numpy()
        return pd.DataFrame({
            "score": s,
            "label": (s > 1).astype(np.int64),
            "vec": [[float(a), float(b)] for a, b in zip(model_input["f0"], model_input["f1"], strict=False)],
            "info": [{"n": int(i), "inner": {"x": float(v)}} for i, v in enumerate(s)],
        })


class FailingModel(PythonModel):
    def predict(self, context, model_input, params=None):
        raise ValueError("this model always fails")


class EchoSum(PythonModel):
    """Adds a constant to f0: two versions with different constants tell which one scored."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def predict(self, context, model_input, params=None):
        return (model_input["f0"] + self.offset).to_numpy()


def struct_signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Object, Property, Schema

    inputs = Schema([ColSpec("double", name) for name in ("f0", "f1", "f2", "f3")])
    outputs = Schema([
        ColSpec("double", "score"),
        ColSpec("long", "label"),
        ColSpec(Array("double"), "vec"),
        ColSpec(Object([Property("n", "long"), Property("inner", Object([Property("x", "double")]))]), "info"),
    ])
    return ModelSignature(inputs=inputs, outputs=outputs)


def scalar_signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("double", n) for n in ("f0", "f1", "f2", "f3")]),
                          outputs=Schema([ColSpec("double")]))


def log_pyfunc(model: PythonModel, signature, name: str = "model"):
    """Log ``model`` (its class pickled by value) through the current tracking URI."""
    import sys

    import cloudpickle
    import mlflow.pyfunc

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        return mlflow.pyfunc.log_model(name=name, python_model=model, signature=signature,
                                       pip_requirements=["mlflow-skinny==3.17.2", "cloudpickle==3.1.3"])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
