"""``spark_udf``: an MLflow model as a Spark column expression.

When the model compiles to Spark SQL (:mod:`sparkml_ops.models.compile`) the column is a
native expression: no Python worker, Spark's code generation. Otherwise it is an Arrow UDF:

The model is resolved and downloaded once on the driver, shipped to the executors once per
session (a Spark archive), loaded once per Python worker and fed Arrow columns directly
(a scalar Arrow UDF — no pandas on the way in or out for sklearn and ONNX models). Whole
DataFrames are scored by :func:`~sparkml_ops.models.scoring.score` (``mapInArrow``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from sparkml_ops.errors import BadInput
from sparkml_ops.models import environment, shipping, spec
from sparkml_ops.models.compile.sqltext import quote
from sparkml_ops.models.environment import EnvMode
from sparkml_ops.models.handle import ModelHandle
from sparkml_ops.models.predictors import CompileMode, LoadOptions, allow_pickle_default, compiled_backend
from sparkml_ops.models.resolve import ResolvedModel, resolve_model

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

_log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 50_000


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

    def compiled_sql(self, names: Sequence[Any]) -> str | None:
        """The compiled expression over columns ``names``, or None (and one log line) if it cannot be used."""
        if self.compiled is None:
            return None
        if all(isinstance(n, str) for n in names):
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
                return [F.col(quote(n)) for n in names], names, names
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
                return [F.col(quote(n)) for n in names], names, names  # by name, in the model's order
            if len(cols) != len(names):
                raise BadInput(f"model {label} expects {len(names)} inputs {spec.describe_inputs(inputs)}, "
                               f"got {len(cols)} columns {list(shown)}")
            return [F.col(quote(c)) if isinstance(c, str) else c for c in cols], names, shown
        if inputs.kind == "tensor" and inputs.width and len(cols) != inputs.width:
            raise BadInput(f"model {label} takes {spec.describe_inputs(inputs)}, got {len(cols)} columns {list(shown)}")
        return [F.col(quote(c)) if isinstance(c, str) else c for c in cols], shown, shown

    def handle_for(self, model_names: Sequence[str]) -> ModelHandle:
        return replace(self._handle, input_names=tuple(model_names))

    # -- the column expression ------------------------------------------------------------

    def __call__(self, *cols: Any) -> Column:
        """The model's prediction as a Column over ``cols`` (names or Columns; none: the signature's names)."""
        from pyspark.sql.functions import arrow_udf

        from sparkml_ops.models.worker import udf_function

        columns, model_names, shown = self.bind(cols)
        raw = tuple(cols[0]) if len(cols) == 1 and isinstance(cols[0], (list, tuple)) else cols
        sql = self.compiled_sql(shown if all(isinstance(c, str) for c in raw) else raw)
        if sql is not None:
            return self.compiled.column(sql)  # a tree ensemble's trees stay apart in generated code
        key = (*model_names, "|", *shown)
        udf = self._udfs.get(key)
        if udf is None:
            body = udf_function(self.handle_for(model_names), shown)
            # scalar iterator form, inferred from the type hints (pyspark's stubs do not list it)
            udf = arrow_udf(cast(Any, body), returnType=self.result_type)
            self._udfs[key] = udf
        return udf(*columns)


def spark_udf(spark: SparkSession, model: Any, *, result_type: Any = None, env: EnvMode = "local",
              batch_size: int = DEFAULT_BATCH_SIZE, fast: bool = True, allow_pickle: bool | None = None,
              env_cache_dir: str | None = None, onnx_threads: int = 1, compile: CompileMode = "auto") -> ModelUDF:
    """An MLflow model as a column function: ``spark_udf(spark, uri)(*cols)`` returns a Spark ``Column``.

    The model is resolved and downloaded once here, on the driver; calling the result binds
    input columns and gives a Column (use :func:`~sparkml_ops.models.scoring.score` for a whole
    DataFrame). The column is a native Spark SQL expression when the model compiles, else an
    Arrow UDF whose Python workers load the model through the scoring core's one fast-path
    policy (:func:`~sparkml_ops.models.predictors.load_predictor`, as the REST server does).

    Args:
        spark: the session whose executors will score (the model ships to them once).
        model: a run id, ``runs:/…``, ``models:/…`` (version, alias, ``latest``), a path or a
            resolved model.
        result_type: a pyspark ``DataType`` or DDL string; default: from the output signature.
        env: ``"local"`` scores with the session's Python and warns about requirement
            differences; ``"packed"`` requires executors that run the model's packed env.
        batch_size: the most rows per model call.
        fast: ``False`` always goes through MLflow's pyfunc.
        allow_pickle: lets the workers unpickle model files (default:
            ``$MLFLOW_ALLOW_PICKLE_DESERIALIZATION``, what MLflow's own loaders honour).
        env_cache_dir: where packed envs are cached (``env="packed"``).
        onnx_threads: onnxruntime threads per Python worker.
        compile: ``"auto"`` compiles when the model allows and logs one line saying why when
            it does not; ``True`` raises instead; ``False`` always scores in Python.

    Raises:
        BadInput: an invalid option, or a model that cannot be resolved.
        NotCompilable: ``compile=True`` and the model (or one part of it) does not compile.

    Example::

        udf = spark_udf(spark, "models:/churn@prod")
        df.withColumn("churn", udf())            # the signature's input names
        df.withColumn("churn", udf("a", "b"))    # or the columns, in the signature's order
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
            options=LoadOptions(fast=fast, allow_pickle=allow_pickle_default(allow_pickle), onnx_threads=onnx_threads))
    return ModelUDF(resolved, inputs, result, make_handle if compiled is not None else make_handle(),
                    compiled=compiled, compile_reason=reason or None, compile_mode=compile)

