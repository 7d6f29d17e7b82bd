"""Models: pyfunc helpers, Spark scoring, packed environments, ONNX and REST serving.

Public entry points are imported lazily, so ``import sparkml_ops.models`` starts no JVM:

- :func:`spark_udf` — a model as a Spark column: a native Spark SQL expression when the model
  compiles (:mod:`sparkml_ops.models.compile`), else Arrow batches scored in Python workers;
- :func:`to_sql` — the compiled model as Spark SQL text, for plain ``SELECT`` queries;
- :func:`score` — any model on a whole DataFrame (Spark ML pipelines natively, compiled models as Spark
  SQL, the rest via Arrow);
- :func:`resolve_model` — run id / ``runs:/`` / ``models:/`` / path to a local model directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the lazy exports; at run time __getattr__ imports them
    from sparkml_ops.models.compile import NotCompilable, compile_model, to_sql
    from sparkml_ops.models.environment import ModelEnvWarning
    from sparkml_ops.models.resolve import ResolvedModel, resolve_model
    from sparkml_ops.models.scoring import score
    from sparkml_ops.models.udf import ModelUDF, spark_udf

_EXPORTS = {
    "spark_udf": "sparkml_ops.models.udf",
    "ModelUDF": "sparkml_ops.models.udf",
    "score": "sparkml_ops.models.scoring",
    "resolve_model": "sparkml_ops.models.resolve",
    "ResolvedModel": "sparkml_ops.models.resolve",
    "ModelEnvWarning": "sparkml_ops.models.environment",
    "to_sql": "sparkml_ops.models.compile",
    "compile_model": "sparkml_ops.models.compile",
    "NotCompilable": "sparkml_ops.models.compile",
}

__all__ = ["ModelEnvWarning", "ModelUDF", "NotCompilable", "ResolvedModel", "compile_model",
           "resolve_model", "score", "spark_udf", "to_sql"]  # = _EXPORTS (tests/test_exports.py)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sparkml_ops.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
