"""``spark_udf``: an MLflow model as a Spark column expression.

When the model compiles to Spark SQL (:mod:`sparkml_ops.models.compile`) the column is a
native expression: no Python worker, Spark's code generation. Otherwise it is an Arrow UDF:

The model is resolved and downloaded once on the driver, shipped to the executors once per
session (a Spark archive), loaded once per Python worker and fed Arrow columns directly
(a scalar Arrow UDF — no pandas on the way in or out for sklearn and ONNX models). The same
object also scores whole DataFrames through ``mapInArrow`` (:meth:`ModelUDF.transform`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

from sparkml_ops.errors import BadInput
from sparkml_ops.models import environment, shipping, spec
from sparkml_ops.models.handle import ModelHandle
from sparkml_ops.models.predictors import CompileMode, allow_pickle_default, compiled_backend
from sparkml_ops.models.resolve import ResolvedModel, resolve_model

_log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 50_000
MODEL_COLUMNS = ("model_uri", "model_run_id", "model_id")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class ModelUDF:
    """Callable like a UDF: ``udf(*cols)`` (or ``udf()`` to bind the signature's input names)."""

    def __init__(self, model: ResolvedModel, inputs: spec.InputSpec, result_type: Any,
                 handle: ModelHandle | Callable[[], ModelHandle], *, compiled: Any = None,
                 compile_reason: str | None = None, compile_mode: CompileMode = "auto") -> None:
        self.model = model
        self.inputs = inputs
        self.result_type = result_type
        self._handle_or_factory = handle
        self._udfs: dict[tuple[str, ...], Any] = {}
        self.compiled = compiled  # sparkml_ops.models.compile.Compiled, or None
        self.compile_reason = compile_reason  # why the model scores through Python, when it does
        self.compile_mode = compile_mode

    @property
    def _handle(self) -> ModelHandle:
        """The Python path's handle; a compiled model ships its files only if the Python path is needed."""
        if callable(self._handle_or_factory):
            self._handle_or_factory = self._handle_or_factory()
        return self._handle_or_factory

    @property
    def sql(self) -> str | None:
        """The compiled Spark SQL expression over the signature's names (None when not compiled)."""
        return self.compiled.sql() if self.compiled is not None else None

    def _compiled_sql(self, names: Sequence[Any]) -> str | None:
        """The compiled expression over columns ``names``, or None (and one log line) if it cannot be used."""
        if self.compiled is None:
            return None
        if all(isinstance(n, str) for n in names):
            from sparkml_ops.models.compile.sqltext import quote

            return self.compiled.bind([quote(n) for n in names])
        why = "the compiled expression takes input columns by name, and Column expressions were passed"
        if self.compile_mode is True:
            from sparkml_ops.models.compile import NotCompilable

            raise NotCompilable(f"model {self.model.label}: {why}; pass column names or compile='auto'")
        _log.warning("model %s scores through the Python UDF: %s", self.model.label, why)
        return None

    # -- description ----------------------------------------------------------------------

    @property
    def input_names(self) -> tuple[str, ...] | None:
        """The signature's input names (None for an unnamed tensor or no signature)."""
        return self.inputs.names

    def __repr__(self) -> str:
        path = "compiled to Spark SQL" if self.compiled is not None else "Python"
        return (f"ModelUDF({self.model.label}, inputs={spec.describe_inputs(self.inputs)}, "
                f"returns {self.result_type.simpleString()}, {path})")

    # -- binding --------------------------------------------------------------------------

    def bind(self, cols: Sequence[Any]) -> tuple[list[Any], tuple[str, ...], tuple[str, ...]]:
        """(Spark columns, names the model sees, names messages use) for a call with ``cols``."""
        from pyspark.sql import functions as F

        if len(cols) == 1 and isinstance(cols[0], (list, tuple)):
            cols = tuple(cols[0])
        label, inputs = self.model.label, self.inputs
        if not cols:
            if inputs.kind == "columns":
                names = tuple(inputs.names or ())
                return [F.col(_quote(n)) for n in names], names, names
            if inputs.kind == "tensor":
                raise BadInput(f"model {label} takes {spec.describe_inputs(inputs)}: call the UDF with "
                               f"{inputs.width} columns")
            raise BadInput(f"model {label} has no signature, so its inputs cannot be bound by name: "
                           "call the UDF with the input columns")
        shown = tuple(c if isinstance(c, str) else f"arg{i}" for i, c in enumerate(cols))
        if inputs.kind == "columns":
            names = tuple(inputs.names or ())
            strings = [c for c in cols if isinstance(c, str)]
            if strings and any(s in names for s in strings):
                missing = [n for n in names if n not in strings]
                unexpected = [s for s in strings if s not in names]
                if missing or unexpected or len(strings) != len(cols):
                    raise BadInput(f"model {label} expects inputs {spec.describe_inputs(inputs)}; "
                                   f"missing {missing}; not model inputs {unexpected}")
                return [F.col(_quote(n)) for n in names], names, names  # by name, in the model's order
            if len(cols) != len(names):
                raise BadInput(f"model {label} expects {len(names)} inputs {spec.describe_inputs(inputs)}, "
                               f"got {len(cols)} columns {list(shown)}")
            return [F.col(_quote(c)) if isinstance(c, str) else c for c in cols], names, shown
        if inputs.kind == "tensor" and inputs.width and len(cols) != inputs.width:
            raise BadInput(f"model {label} takes {spec.describe_inputs(inputs)}, got {len(cols)} columns {list(shown)}")
        return [F.col(_quote(c)) if isinstance(c, str) else c for c in cols], shown, shown

    def handle_for(self, model_names: Sequence[str]) -> ModelHandle:
        return replace(self._handle, input_names=tuple(model_names))

    # -- the column expression ------------------------------------------------------------

    def __call__(self, *cols: Any):
        from pyspark.sql.functions import arrow_udf

        from sparkml_ops.models.worker import udf_function

        columns, model_names, shown = self.bind(cols)
        raw = tuple(cols[0]) if len(cols) == 1 and isinstance(cols[0], (list, tuple)) else cols
        sql = self._compiled_sql(shown if all(isinstance(c, str) for c in raw) else raw)
        if sql is not None:
            from pyspark.sql import functions as F

            return F.expr(sql)
        key = (*model_names, "|", *shown)
        udf = self._udfs.get(key)
        if udf is None:
            body = udf_function(self.handle_for(model_names), shown)
            # scalar iterator form, inferred from the type hints (pyspark's stubs do not list it)
            udf = arrow_udf(cast(Any, body), returnType=self.result_type)
            self._udfs[key] = udf
        return udf(*columns)

    # -- whole DataFrames -----------------------------------------------------------------

    def check_frame(self, df, cols: Sequence[Any] = ()) -> tuple[Any, list[str], tuple[str, ...]]:
        """Validate ``df`` against the model on the driver; returns (df with inputs cast, input columns, model names).

        Missing columns and incompatible types fail here, naming the column, its type and
        the type the model needs; lossless numeric casts (int → double) are applied.
        """
        from pyspark.sql import functions as F

        if len(cols) == 1 and isinstance(cols[0], (list, tuple)):
            cols = tuple(cols[0])
        if any(not isinstance(c, str) for c in cols):
            raise BadInput("transform/score take input columns by name (strings); use the UDF for expressions")
        self.bind(cols)  # same rules (and messages) as the column expression
        if not cols and self.inputs.kind == "columns":
            cols = tuple(self.inputs.names or ())
        present = {f.name: f.dataType for f in df.schema.fields}
        missing = [c for c in cols if c not in present]
        if missing:
            raise BadInput(f"the DataFrame has no column(s) {missing} that model {self.model.label} needs "
                           f"(inputs {spec.describe_inputs(self.inputs)}); its columns are {list(present)}")
        if self.inputs.kind == "columns" and cols != tuple(self.inputs.names or ()) and \
                set(cols) == set(self.inputs.names or ()):
            cols = tuple(self.inputs.names or ())
        model_names = tuple(self.inputs.names or ()) if self.inputs.kind == "columns" else tuple(cols)
        expected = self.inputs.spark_types if self.inputs.spark_types else (None,) * len(cols)
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
                               f"{self.model.label} needs {want.simpleString()} for input {column!r}")
        if casts:
            df = df.select(*[F.col(_quote(f.name)).cast(casts[f.name]).alias(f.name) if f.name in casts
                             else F.col(_quote(f.name)) for f in df.schema.fields])
        return df, list(cols), model_names

    def transform(self, df, *cols: str, output_col: str = "prediction", model_columns: bool = False):
        """``df`` plus ``output_col`` (and the model's ids when ``model_columns``).

        A compiled model adds one native column; otherwise rows are scored with ``mapInArrow``.
        """
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        from sparkml_ops.models.worker import map_function

        taken = set(df.columns)
        new = [output_col, *(MODEL_COLUMNS if model_columns else ())]
        clash = [c for c in new if c in taken]
        if clash:
            raise BadInput(f"the DataFrame already has column(s) {clash}; pass another output_col or drop them")
        df, columns, model_names = self.check_frame(df, cols)
        extra = dict(zip(MODEL_COLUMNS, (self.model.uri, self.model.run_id, self.model.model_id), strict=False)) \
            if model_columns else {}
        sql = self._compiled_sql(columns)
        if sql is not None:
            return df.select("*", F.expr(sql).alias(output_col),
                             *[F.lit(v).cast("string").alias(k) for k, v in extra.items()])
        fields = [*df.schema.fields, T.StructField(output_col, self.result_type, True)]
        fields += [T.StructField(name, T.StringType(), True) for name in extra]
        body = map_function(self.handle_for(model_names), columns, output_col, extra)
        return df.mapInArrow(body, T.StructType(fields))


def spark_udf(spark, model: Any, *, result_type: Any = None, env: str = "local",
              batch_size: int = DEFAULT_BATCH_SIZE, fast: bool = True, allow_pickle: bool | None = None,
              env_cache_dir: str | None = None, onnx_threads: int = 1, compile: CompileMode = "auto") -> ModelUDF:
    """An MLflow model (run id, ``runs:/``, ``models:/`` or a path) as a Spark UDF.

    ``result_type`` defaults to the signature's outputs. ``batch_size`` caps the rows per
    model call. ``env="local"`` warns about requirement differences; ``env="packed"``
    requires a session whose executors run the model's packed env (see ``environment``).
    ``allow_pickle`` (default: ``$MLFLOW_ALLOW_PICKLE_DESERIALIZATION``) lets the workers
    unpickle model files, as MLflow's own loaders require. ``fast=False`` always goes
    through MLflow's pyfunc.

    ``compile="auto"`` (default) makes the column a native Spark SQL expression when the model
    compiles (linear models, tree ensembles, their scikit-learn pipelines; ONNX graphs of
    them) and logs one line saying why when it does not; ``compile=True`` raises
    :class:`~sparkml_ops.models.compile.NotCompilable` instead; ``compile=False`` always
    scores in Python.
    """
    if compile not in ("auto", True, False) or isinstance(compile, int) and not isinstance(compile, bool):
        raise BadInput(f"compile must be 'auto', True or False, got {compile!r}")
    environment.check_mode(env)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise BadInput(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(onnx_threads, int) or onnx_threads <= 0:
        raise BadInput(f"onnx_threads must be a positive integer, got {onnx_threads!r}")
    resolved = resolve_model(model)
    if env == "local":
        environment.warn_local_differences(resolved, stacklevel=3)
    else:
        environment.require_packed_session(spark, resolved, cache_dir=env_cache_dir)
    inputs = spec.input_spec(resolved.meta)
    result = spec.parse_result_type(result_type, spark) if result_type is not None else spec.output_type(resolved.meta)
    compiled, reason = compiled_backend(resolved, result, compile, allow_pickle)

    def make_handle() -> ModelHandle:
        return ModelHandle(
            uri=resolved.uri, run_id=resolved.run_id, model_id=resolved.model_id, digest=resolved.digest,
            archive=shipping.ship(spark, resolved), local_path=resolved.path, input_names=inputs.names or (),
            result_arrow=spec.arrow_type(result), batch_size=batch_size,
            allow_pickle=allow_pickle_default(allow_pickle), fast=fast, onnx_threads=onnx_threads)
    return ModelUDF(resolved, inputs, result, make_handle if compiled is not None else make_handle(),
                    compiled=compiled, compile_reason=reason or None, compile_mode=compile)

