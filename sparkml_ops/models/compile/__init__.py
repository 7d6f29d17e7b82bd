"""Compile an MLflow model to one Spark SQL expression: scoring with no Python worker.

Linear models and tree ensembles (scikit-learn, and ONNX graphs of the same operators)
are arithmetic and comparisons on a row's columns. Written as Spark SQL they run in the
JVM with code generation, in batch, Structured Streaming, Spark Connect and plain SQL alike.
:func:`compile_model` returns a :class:`Compiled` or raises :class:`NotCompilable`
naming the part that has no SQL form; :func:`to_sql` is the expression as text.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sparkml_ops.models.compile.base import Compiled, Feature, NotCompilable, slot
from sparkml_ops.models.compile.trees import Ensemble

__all__ = ["Compiled", "NotCompilable", "compile_model", "to_sql"]


def _input_features(inputs) -> list[Feature]:
    """One feature per signature input (in signature order), typed as the model will see it."""
    if inputs.kind == "any":
        raise NotCompilable("the model has no input signature, so its inputs are unknown")
    out = []
    for i, spark_type in enumerate(inputs.spark_types or (None,) * (inputs.width or 0)):
        type_name = spark_type.typeName() if spark_type is not None else None
        ref = slot(i)
        if type_name == "double":
            out.append(Feature(ref))
        elif type_name in ("float", "long", "integer", "short", "byte", "boolean"):
            out.append(Feature(f"CAST({ref} AS DOUBLE)"))
        elif type_name == "string":
            out.append(Feature(ref, "str"))
        else:
            what = spark_type.simpleString() if spark_type is not None else "an unknown type"
            name = inputs.names[i] if inputs.names else f"tensor column {i}"
            raise NotCompilable(f"input {name!r} has type {what}; compiled models take numeric or string columns")
    return out


def _reorder(features: list[Feature], names: tuple[str, ...] | None, model) -> list[Feature]:
    """Features in the order the estimator was fitted on (``feature_names_in_``), when it names the inputs."""
    first = model.steps[0][1] if type(model).__name__ == "Pipeline" else model
    fitted = getattr(first, "feature_names_in_", None)
    if names is None or fitted is None:
        return features
    fitted = [str(n) for n in fitted]
    if sorted(fitted) != sorted(names):
        raise NotCompilable(f"the model was fitted on columns {fitted} but its signature names {list(names)}")
    return [features[names.index(n)] for n in fitted]


def _load_sklearn(path: Path, allow_pickle: bool):
    import mlflow.sklearn

    from sparkml_ops.models.predictors import allow_unpickling

    with allow_unpickling(allow_pickle):
        return mlflow.sklearn.load_model(str(path))


def _output_names(result, meta, graph) -> list[str]:
    """The graph outputs the result holds: a struct's fields, else the signature's one output (or the first)."""
    if result.typeName() == "struct":
        return [f.name for f in result.fields]
    schema = meta.get_output_schema() if meta is not None else None
    names = schema.input_names() if schema is not None else []
    return [str(names[0])] if names and isinstance(names[0], str) else [graph.output[0].name]


def compile_model(model: Any, *, result_type: Any = None, allow_pickle: bool | None = None) -> Compiled:
    """The model as a Spark SQL expression: scoring with no Python worker (see :func:`to_sql` for the text).

    Args:
        model: anything :func:`~sparkml_ops.models.resolve.resolve_model` takes (a URI, run id,
            path or resolved model).
        result_type: a pyspark DataType or DDL string overriding the signature's output type,
            as it does for the Python UDF.
        allow_pickle: lets the driver unpickle a pickle/cloudpickle-format scikit-learn model
            (default: ``$MLFLOW_ALLOW_PICKLE_DESERIALIZATION``).

    Returns a :class:`Compiled` (its ``template``, ``tree_count``, ``compile_seconds``; bind it to
    columns with ``bind``/``sql``).

    Raises:
        NotCompilable: the flavor, estimator, ONNX operator or result type does not compile
            (the message names it).
        BadInput: a model reference that cannot be resolved.

    Example: ``compile_model("models:/churn/3").tree_count``.
    """
    from sparkml_ops.models import spec
    from sparkml_ops.models.resolve import ResolvedModel, resolve_model
    from sparkml_ops.models.udf import allow_pickle_default

    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    meta = resolved.meta
    flavors = meta.flavors if meta is not None else {}
    inputs = spec.input_spec(meta)
    result = spec.parse_result_type(result_type) if result_type is not None else spec.output_type(meta)
    if result.typeName() == "map" or result.typeName() == "struct" and "onnx" not in flavors:
        raise NotCompilable(f"the result type {result.simpleString()} does not compile (scalars and arrays do)")
    features = _input_features(inputs)
    started = time.perf_counter()
    if "sklearn" in flavors and flavors.get("python_function", {}).get("loader_module") == "mlflow.sklearn":
        from sparkml_ops.models.compile import sklearn

        estimator = _load_sklearn(Path(resolved.path), allow_pickle_default(allow_pickle))
        method = flavors.get("python_function", {}).get("predict_fn") or "predict"
        body = sklearn.predict(estimator, _reorder(features, inputs.names, estimator), method)
        what, count = f"scikit-learn {type(estimator).__name__}.{method}", sklearn.count_trees(estimator)
    elif "onnx" in flavors:
        import onnx as onnx_package

        from sparkml_ops.models.compile import onnx

        graph = onnx_package.load(str(Path(resolved.path) / flavors["onnx"]["data"]))
        body = onnx.predict(graph, features, _output_names(result, meta, graph))
        what, count = "ONNX graph", len(body.trees) if isinstance(body, Ensemble) else 0
    else:
        raise NotCompilable(f"model flavor(s) {sorted(flavors)} do not compile; scikit-learn and ONNX models do")
    ensemble = body if isinstance(body, Ensemble) else None
    text = body.sql() if isinstance(body, Ensemble) else body
    template = f"CAST({text} AS {result.simpleString()})"
    elapsed = time.perf_counter() - started
    return Compiled(template=template, input_names=inputs.names, width=len(features),
                    result_type=result.simpleString(), description=what, tree_count=count,
                    compile_seconds=elapsed, ensemble=ensemble)


def to_sql(model_uri: Any, columns: list[str] | None = None) -> str:
    """The model's prediction as Spark SQL text over its signature's column names (or ``columns``).

    Args:
        model_uri: anything :func:`compile_model` takes.
        columns: column names to use instead of the signature's, in the signature's order.

    Raises:
        NotCompilable: the model does not compile (the message names the part).
        BadInput: ``columns`` of the wrong length, or a model reference that cannot be resolved.

    Example: ``spark.sql(f"SELECT *, {to_sql('models:/churn@prod')} AS prediction FROM t")``.
    """
    return compile_model(model_uri).sql(columns)
