"""``score(df, model)``: the one entry point for scoring a whole DataFrame, whatever the model.

A Spark ML pipeline (MLflow's ``spark`` flavor) runs its own ``transform`` in the JVM — no
Python round trip at all. Any other model goes through the scoring core: one native column
when it compiles to Spark SQL, else ``mapInArrow`` with the predictor the core's fast-path
policy chooses in each Python worker (:mod:`sparkml_ops.models.predictors`). The batch and
stream jobs score through here; :func:`~sparkml_ops.models.udf.spark_udf` is the same core
as a Column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkml_ops.errors import BadInput
from sparkml_ops.models import spec
from sparkml_ops.models.compile.sqltext import quote
from sparkml_ops.models.environment import EnvMode
from sparkml_ops.models.resolve import ResolvedModel, resolve_model
from sparkml_ops.models.udf import DEFAULT_BATCH_SIZE, ModelUDF, spark_udf

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MODEL_COLUMNS = ("model_uri", "model_run_id", "model_id")


def is_spark_model(model: ResolvedModel) -> bool:
    return "spark" in (model.meta.flavors if model.meta is not None else {})


def _model_columns(model: ResolvedModel) -> dict[str, str | None]:
    return dict(zip(MODEL_COLUMNS, (model.uri, model.run_id, model.model_id), strict=True))


def load_spark_pipeline(model: ResolvedModel) -> Any:
    """The ``pyspark.ml`` model inside an MLflow ``spark``-flavor directory."""
    from pyspark.ml import PipelineModel

    conf = model.meta.flavors["spark"]
    path = Path(model.path) / conf.get("model_data", "sparkml")
    if not path.exists():
        raise BadInput(f"model {model.label} has a spark flavor but no model data at {path}")
    return PipelineModel.load(str(path))


def score(df: DataFrame, model: Any, *cols: str, output_col: str = "prediction", model_columns: bool = False,
          result_type: Any = None, env: EnvMode = "local", batch_size: int = DEFAULT_BATCH_SIZE,
          **udf_options: Any) -> DataFrame:
    """``df`` plus the model's prediction in ``output_col``: the one entry point for a whole DataFrame.

    Args:
        df: the rows to score (batch or streaming).
        model: a run id, ``runs:/…``, ``models:/…``, a local path, a resolved model, or a
            :class:`~sparkml_ops.models.udf.ModelUDF` from :func:`spark_udf` (reused as it is:
            a stream scoring every micro-batch resolves and ships the model once).
        cols: the input columns by name; default: the signature's names.
        output_col: the new column; it must not exist yet.
        model_columns: also add ``model_uri``, ``model_run_id`` and ``model_id`` to every row.
        result_type, env, batch_size, udf_options: as for :func:`spark_udf` (``compile``,
            ``fast``, ``allow_pickle``…); not accepted together with a ``ModelUDF``.

    Spark ML pipelines run natively (their output columns are their own: ``output_col``,
    ``result_type`` and ``batch_size`` do not apply); compilable models become one Spark SQL
    column; everything else is scored through ``mapInArrow``. Input columns are checked on
    the driver and lossless numeric casts (int → double) applied.

    Raises:
        BadInput: a missing input column, a column whose type the model cannot take, an
            output column that already exists, or options given with a ``ModelUDF``.
        NotCompilable: ``compile=True`` and the model does not compile.

    Example::

        scored = score(spark.read.parquet("s3://bucket/rows"), "models:/churn@prod", model_columns=True)
    """
    if isinstance(model, ModelUDF):
        if result_type is not None or udf_options or env != "local" or batch_size != DEFAULT_BATCH_SIZE:
            raise BadInput("score() with a ModelUDF takes no spark_udf options: they were fixed when it was made")
        return _score_frame(model, df, cols, output_col, model_columns)
    resolved = resolve_model(model)
    if is_spark_model(resolved):
        if cols:
            raise BadInput(f"model {resolved.label} is a Spark ML pipeline: it reads its own input columns; "
                           f"do not pass columns {list(cols)}")
        from pyspark.sql import functions as F

        # env does not apply: the pipeline runs in the JVM, not in Python workers
        out = load_spark_pipeline(resolved).transform(df)
        if not model_columns:
            return out
        _check_new_columns(out, MODEL_COLUMNS, "drop them or pass model_columns=False")
        return out.select("*", *[F.lit(v).cast("string").alias(c) for c, v in _model_columns(resolved).items()])
    udf = spark_udf(df.sparkSession, resolved, result_type=result_type, env=env, batch_size=batch_size, **udf_options)
    return _score_frame(udf, df, cols, output_col, model_columns)


def _check_new_columns(df: DataFrame, new: Sequence[str], fix: str) -> None:
    clash = [c for c in new if c in df.columns]
    if clash:
        raise BadInput(f"the DataFrame already has column(s) {clash}; {fix}")


def _check_frame(udf: ModelUDF, df: DataFrame, cols: Sequence[Any]) -> tuple[DataFrame, list[str], tuple[str, ...]]:
    """Validate ``df`` against the model on the driver; returns (df with inputs cast, input columns, model names).

    Missing columns and incompatible types fail here, naming the column, its type and the
    type the model needs; lossless numeric casts (int → double) are applied.
    """
    from pyspark.sql import functions as F

    if len(cols) == 1 and isinstance(cols[0], (list, tuple)):
        cols = tuple(cols[0])
    if any(not isinstance(c, str) for c in cols):
        raise BadInput("score takes input columns by name (strings); use spark_udf for expressions")
    _, model_names, cols = udf.bind(cols)  # same rules (and messages) as the column expression; model order
    inputs, label = udf.inputs, udf.model.label
    present = {f.name: f.dataType for f in df.schema.fields}
    missing = [c for c in cols if c not in present]
    if missing:
        raise BadInput(f"the DataFrame has no column(s) {missing} that model {label} needs "
                       f"(inputs {spec.describe_inputs(inputs)}); its columns are {list(present)}")
    expected = inputs.spark_types if inputs.spark_types else (None,) * len(cols)
    casts = {}
    for column, want in zip(cols, expected, strict=False):
        have = present[column]
        if want is None or have == want:
            continue
        have_name, want_name = have.typeName(), want.typeName()
        if want_name in spec.NUMERIC and have_name in spec.NUMERIC:
            casts[column] = want
        elif want_name == "string" or have_name in ("string", "binary", "boolean") or want_name == "boolean":
            raise BadInput(f"column {column!r} of the DataFrame is {have.simpleString()}, but model "
                           f"{label} needs {want.simpleString()} for input {column!r}")
    if casts:
        df = df.select(*[F.col(quote(f.name)).cast(casts[f.name]).alias(f.name) if f.name in casts
                         else F.col(quote(f.name)) for f in df.schema.fields])
    return df, list(cols), model_names


def _score_frame(udf: ModelUDF, df: DataFrame, cols: Sequence[Any], output_col: str,
                 model_columns: bool) -> DataFrame:
    """``df`` plus ``output_col``: one native column when compiled, else rows through ``mapInArrow``."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from sparkml_ops.models.worker import map_function

    _check_new_columns(df, [output_col, *(MODEL_COLUMNS if model_columns else ())],
                       "pass another output_col or drop them")
    df, columns, model_names = _check_frame(udf, df, cols)
    extra = _model_columns(udf.model) if model_columns else {}
    sql = udf.compiled_sql(columns)
    if sql is not None:
        return df.select("*", udf.compiled.column(sql).alias(output_col),
                         *[F.lit(v).cast("string").alias(k) for k, v in extra.items()])
    fields = [*df.schema.fields, T.StructField(output_col, udf.result_type, True)]
    fields += [T.StructField(name, T.StringType(), True) for name in extra]
    body = map_function(udf.handle_for(model_names), columns, output_col, extra)
    return df.mapInArrow(body, T.StructType(fields))
