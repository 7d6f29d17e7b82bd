"""``score(df, model)``: one entry for every kind of model a user may be handed.

A Spark ML pipeline (MLflow's ``spark`` flavor) runs its own ``transform`` in the JVM —
no Python round trip at all. Anything else goes through
:meth:`~sparkml_ops.models.udf.ModelUDF.transform`: one native column when the model compiles
to Spark SQL, else ``mapInArrow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparkml_ops.errors import BadInput
from sparkml_ops.models.resolve import ResolvedModel, resolve_model
from sparkml_ops.models.udf import DEFAULT_BATCH_SIZE, MODEL_COLUMNS, spark_udf


def is_spark_model(model: ResolvedModel) -> bool:
    return "spark" in (model.meta.flavors if model.meta is not None else {})


def _with_model_columns(df, model: ResolvedModel):
    from pyspark.sql import functions as F

    clash = [c for c in MODEL_COLUMNS if c in df.columns]
    if clash:
        raise BadInput(f"the DataFrame already has column(s) {clash}; drop them or pass model_columns=False")
    values = (model.uri, model.run_id, model.model_id)
    return df.select("*", *[F.lit(v).cast("string").alias(c) for c, v in zip(MODEL_COLUMNS, values, strict=False)])


def load_spark_pipeline(model: ResolvedModel):
    """The ``pyspark.ml`` model inside an MLflow ``spark``-flavor directory."""
    from pyspark.ml import PipelineModel

    conf = model.meta.flavors["spark"]
    path = Path(model.path) / conf.get("model_data", "sparkml")
    if not path.exists():
        raise BadInput(f"model {model.label} has a spark flavor but no model data at {path}")
    return PipelineModel.load(str(path))


def score(df, model: Any, *cols: str, output_col: str = "prediction", model_columns: bool = False,
          result_type: Any = None, env: str = "local", batch_size: int = DEFAULT_BATCH_SIZE,
          **udf_options: Any):
    """Score ``df`` with any MLflow model: the one entry point for a whole DataFrame.

    Spark ML pipelines run natively, compilable models as Spark SQL, everything else via Arrow.

    ``model_columns=True`` adds ``model_uri``, ``model_run_id`` and ``model_id`` to every row.
    For a Spark ML pipeline the output columns are the pipeline's own (``output_col``,
    ``result_type`` and ``batch_size`` do not apply).
    """
    resolved = resolve_model(model)
    if is_spark_model(resolved):
        if cols:
            raise BadInput(f"model {resolved.label} is a Spark ML pipeline: it reads its own input columns; "
                           f"do not pass columns {list(cols)}")
        # env does not apply: the pipeline runs in the JVM, not in Python workers
        out = load_spark_pipeline(resolved).transform(df)
        return _with_model_columns(out, resolved) if model_columns else out
    udf = spark_udf(df.sparkSession, resolved, result_type=result_type, env=env, batch_size=batch_size, **udf_options)
    return udf.transform(df, *cols, output_col=output_col, model_columns=model_columns)
