"""What a model takes and returns, in Spark's terms, read from its MLflow signature.

Inputs: the names the model expects (``ColSpec`` names) or the width of one unnamed numeric
tensor, plus the Spark type each input should have. Outputs: the Spark result type — a
scalar for one output, an array for a 2-D tensor, a struct for several outputs, nested
structs for ``Object`` columns — unless the caller gives ``result_type``.

Imports pyspark's type classes only (they do not start a JVM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkml_ops.errors import BadInput

NUMERIC = ("byte", "short", "integer", "long", "float", "double")
_MLFLOW_TO_SPARK = {
    "boolean": "boolean", "integer": "integer", "long": "long", "float": "float", "double": "double",
    "string": "string", "binary": "binary", "datetime": "timestamp",
}


@dataclass(frozen=True)
class InputSpec:
    """The model's inputs: ``names`` (None for an unnamed tensor or no signature) and their types.

    ``kind`` says how the worker assembles a batch: ``"columns"`` (named columns),
    ``"tensor"`` (one unnamed 2-D tensor of ``width`` columns) or ``"any"`` (no signature).
    """

    kind: str
    names: tuple[str, ...] | None
    spark_types: tuple[Any, ...]  # pyspark DataType per input, or None when unknown
    width: int | None
    tensor_dtype: str | None = None

    @property
    def all_numeric(self) -> bool:
        return bool(self.spark_types) and all(t is not None and t.typeName() in NUMERIC for t in self.spark_types)


def _np_to_spark(dtype: np.dtype):
    from pyspark.sql import types as T

    kind = np.dtype(dtype)
    table = {
        np.dtype("float64"): T.DoubleType(), np.dtype("float32"): T.FloatType(),
        np.dtype("int64"): T.LongType(), np.dtype("int32"): T.IntegerType(),
        np.dtype("int16"): T.ShortType(), np.dtype("int8"): T.ByteType(),
        np.dtype("uint8"): T.ShortType(), np.dtype("uint16"): T.IntegerType(), np.dtype("uint32"): T.LongType(),
        np.dtype("bool"): T.BooleanType(),
    }
    if kind in table:
        return table[kind]
    if kind.kind in ("U", "O"):
        return T.StringType()
    if kind.kind == "S":
        return T.BinaryType()
    if kind.kind == "M":
        return T.TimestampType()
    raise BadInput(f"tensor dtype {kind} has no Spark equivalent; pass result_type")


def mlflow_type_to_spark(dtype: Any):
    """Spark type of an MLflow ``DataType``/``Array``/``Object``/``Map`` (``AnyType`` has none)."""
    from mlflow.types.schema import AnyType, Array, DataType, Map, Object
    from pyspark.sql import types as T

    if isinstance(dtype, DataType):
        return T._parse_datatype_json_value(_MLFLOW_TO_SPARK[dtype.name])
    if isinstance(dtype, Array):
        return T.ArrayType(mlflow_type_to_spark(dtype.dtype), containsNull=True)
    if isinstance(dtype, Object):
        return T.StructType([T.StructField(p.name, mlflow_type_to_spark(p.dtype), nullable=True)
                             for p in dtype.properties])
    if isinstance(dtype, Map):
        return T.MapType(T.StringType(), mlflow_type_to_spark(dtype.value_type), valueContainsNull=True)
    if isinstance(dtype, AnyType):
        raise BadInput("the model signature declares an output of type 'any', which has no Spark type; "
                       "pass result_type")
    raise BadInput(f"signature type {dtype!r} has no Spark equivalent; pass result_type")


def _tensor_to_spark(spec) -> Any:
    from pyspark.sql import types as T

    shape = tuple(spec.shape)
    result = _np_to_spark(spec.type)
    for _ in shape[1:]:
        result = T.ArrayType(result, containsNull=True)
    return result


def input_spec(meta) -> InputSpec:
    """The inputs of an MLflow model (``mlflow.models.Model``)."""
    schema = meta.get_input_schema() if meta is not None else None
    if schema is None or not schema.inputs:
        return InputSpec("any", None, (), None)
    if schema.is_tensor_spec():
        specs = schema.inputs
        if len(specs) == 1 and specs[0].name is None:
            shape = tuple(specs[0].shape)
            width = shape[1] if len(shape) == 2 and shape[1] > 0 else (1 if len(shape) == 1 else None)
            scalar = _np_to_spark(specs[0].type)
            return InputSpec("tensor", None, (scalar,) * (width or 0), width, str(np.dtype(specs[0].type)))
        names = tuple(str(s.name) for s in specs)
        return InputSpec("columns", names, tuple(_tensor_to_spark(s) for s in specs), len(names))
    names = tuple(str(c.name) if c.name is not None else str(i) for i, c in enumerate(schema.inputs))
    types = []
    for col in schema.inputs:
        try:
            types.append(mlflow_type_to_spark(col.type))
        except BadInput:
            types.append(None)
    has_names = schema.has_input_names()
    return InputSpec("columns" if has_names else "tensor", names if has_names else None, tuple(types),
                     len(names))


def output_type(meta) -> Any:
    """Spark result type from the output signature; ``double`` when there is none (as MLflow does)."""
    from pyspark.sql import types as T

    schema = meta.get_output_schema() if meta is not None else None
    if schema is None or not schema.inputs:
        return T.DoubleType()
    specs = schema.inputs
    if schema.is_tensor_spec():
        if len(specs) == 1:
            return _tensor_to_spark(specs[0])
        return T.StructType([T.StructField(str(s.name if s.name is not None else i), _tensor_to_spark(s))
                             for i, s in enumerate(specs)])
    if len(specs) == 1:
        return mlflow_type_to_spark(specs[0].type)
    return T.StructType([T.StructField(str(c.name if c.name is not None else i), mlflow_type_to_spark(c.type))
                         for i, c in enumerate(specs)])


def parse_result_type(result_type: Any, spark=None) -> Any:
    """A pyspark ``DataType`` from a DataType or a DDL string such as ``"struct<a: double>"``."""
    from pyspark.sql import types as T

    if isinstance(result_type, T.DataType):
        return result_type
    if not isinstance(result_type, str) or not result_type.strip():
        raise BadInput(f"result_type must be a pyspark DataType or a DDL string, got {result_type!r}")
    text = result_type.strip()
    try:
        return T._parse_datatype_json_value(text)  # simple names: 'double', 'long', ...
    except Exception:  # noqa: BLE001 - not a simple name; fall through to the DDL parser
        pass
    try:
        from pyspark.sql.types import _parse_datatype_string

        return _parse_datatype_string(text)
    except Exception as exc:
        raise BadInput(f"result_type {result_type!r} is not a valid Spark DDL type: {exc}") from exc


def arrow_type(spark_type: Any):
    """The Arrow type Spark exchanges for ``spark_type`` (timestamps in UTC, as Spark sends them)."""
    from pyspark.sql.pandas.types import to_arrow_type

    try:
        return to_arrow_type(spark_type, timezone="UTC")
    except Exception as exc:
        raise BadInput(f"result type {spark_type.simpleString()} cannot be exchanged through Arrow: {exc}") from exc


def describe_inputs(spec: InputSpec) -> str:
    """How messages list a model's inputs."""
    if spec.kind == "any":
        return "no signature (any columns)"
    if spec.names is None:
        return f"an unnamed tensor of {spec.width} {spec.tensor_dtype or ''} column(s)".replace("  ", " ")
    return "[" + ", ".join(f"{n}: {t.simpleString() if t is not None else 'any'}"
                           for n, t in zip(spec.names, spec.spark_types, strict=False)) + "]"
