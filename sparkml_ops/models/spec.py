"""What a model takes and returns, read once from its MLflow signature: the one signature spec.

Inputs (:class:`InputSpec`): the names the model expects (``ColSpec`` names) or the width of
one unnamed numeric tensor, the Spark type each input should have, and whether it is
required. :meth:`InputSpec.matrix` is the same inputs seen as one numeric matrix (the
:class:`MatrixSpec` the fast paths take — the Spark workers, the jobs and the REST server
alike), or why they cannot be. Outputs: the Spark result type — a scalar for one output, an
array for a 2-D tensor, a struct for several outputs, nested structs for ``Object`` columns —
unless the caller gives ``result_type``.

Imports pyspark's type classes only (they do not start a JVM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    ``kind`` says how a batch is assembled: ``"columns"`` (named columns), ``"tensor"`` (one
    unnamed 2-D tensor of ``width`` columns) or ``"any"`` (no signature). ``type_names`` are
    MLflow's type per input (``"double"``…, or the numpy dtype of a tensor), ``required`` says
    which inputs must be present, ``shapes`` holds each tensor's shape (None: a column signature).
    """

    kind: str
    names: tuple[str, ...] | None
    spark_types: tuple[Any, ...]  # pyspark DataType per input, or None when unknown
    width: int | None
    tensor_dtype: str | None = None
    type_names: tuple[str, ...] = ()
    required: tuple[bool, ...] = ()
    shapes: tuple[tuple[int, ...], ...] | None = None

    def matrix(self, feature_order: list[str] | None = None) -> tuple[MatrixSpec | None, str]:
        """These inputs as one numeric matrix (:class:`MatrixSpec`), or ``None`` and why not.

        They qualify when they are required scalar numeric columns (double, float, long,
        integer) or one numeric tensor of shape ``(-1, k)``. ``feature_order`` (a fitted
        estimator's ``feature_names_in_``) puts the columns in the order it was trained on.
        """
        if self.kind == "any":
            return None, "the model has no input signature"
        if self.shapes is not None:
            return self._tensor_matrix()
        if self.names is None:
            return None, "the signature has unnamed columns"
        names: list[str] = []
        kinds: list[frozenset] = []
        dtypes: list[type] = []
        type_names: list[str] = []
        for name, type_name, required in zip(self.names, self.type_names, self.required, strict=True):
            if type_name not in _MATRIX_COLUMNS:
                return None, f"column {name!r} has type {type_name}, which is not a numeric scalar"
            if not required:
                return None, f"column {name!r} is optional"
            kind, dtype = _MATRIX_COLUMNS[type_name]
            names.append(name)
            kinds.append(kind)
            dtypes.append(dtype)
            type_names.append(type_name)
        if len(set(names)) != len(names):
            return None, "the signature repeats a column name"
        positional = None
        if feature_order is not None and sorted(feature_order) == sorted(names) and list(feature_order) != names:
            order = [names.index(n) for n in feature_order]
            names, kinds = [names[i] for i in order], [kinds[i] for i in order]
            type_names = [type_names[i] for i in order]
            positional = tuple(order)  # unnamed rows still come in the signature's order
        return MatrixSpec(tuple(names), tuple(kinds), np.result_type(*dtypes), tuple(type_names),
                          {n: j for j, n in enumerate(names)}, tuple(_INT_LIMITS.get(t) for t in type_names),
                          positional), ""

    def _tensor_matrix(self) -> tuple[MatrixSpec | None, str]:
        assert self.shapes is not None
        if len(self.shapes) != 1:
            return None, "the signature has several tensors"
        shape, dtype = self.shapes[0], np.dtype(self.type_names[0])
        if len(shape) != 2 or shape[0] != -1 or shape[1] < 1 or dtype.kind not in "fiu":
            return None, f"tensor input {dtype}{shape} is not a numeric (-1, k) matrix"
        kinds = (FLOAT if dtype.kind == "f" else INT,) * shape[1]
        limit = None if dtype.kind == "f" else 2 ** (8 * dtype.itemsize - 1)
        return MatrixSpec(None, kinds, dtype, (str(dtype),) * shape[1], int_limits=(limit,) * shape[1]), ""


FLOAT = frozenset((float, int))  # JSON numbers a float input accepts (bool is excluded: its type is bool)
INT = frozenset((int,))
_MATRIX_COLUMNS = {"double": (FLOAT, np.float64), "float": (FLOAT, np.float32),
                   "long": (INT, np.int64), "integer": (INT, np.int32)}
_INT_LIMITS = {"long": 2**63, "integer": 2**31}


@dataclass(frozen=True)
class MatrixSpec:
    """The inputs as one numeric matrix: ``names`` in the order the model takes them (None: a tensor).

    ``kinds`` are the JSON value types each input accepts, ``int_limits`` the range integers
    must lie in (``[-limit, limit)``), ``positional`` where input ``j`` sits in an unnamed row
    (the signature's order, when the model takes its columns in another).
    """

    names: tuple[str, ...] | None
    kinds: tuple[frozenset, ...]
    dtype: np.dtype
    type_names: tuple[str, ...]
    index: dict[str, int] = field(default_factory=dict)
    int_limits: tuple[int | None, ...] = ()
    positional: tuple[int, ...] | None = None
    uniform: frozenset | None = None  # set by __post_init__: the one kind every input takes, if any

    def __post_init__(self) -> None:
        if not self.int_limits:
            object.__setattr__(self, "int_limits", (None,) * len(self.kinds))
        same = bool(self.kinds) and len(set(self.kinds)) == 1 and len(set(self.int_limits)) == 1
        object.__setattr__(self, "uniform", self.kinds[0] if same else None)

    @property
    def width(self) -> int:
        return len(self.kinds)

    def label(self, j: int) -> str:
        """How error messages name input ``j``."""
        if self.names is None:
            return f"tensor column {j} ({self.type_names[j]})"
        return f"column {self.names[j]!r} ({self.type_names[j]})"


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
    return schema_inputs(meta.get_input_schema() if meta is not None else None)


def schema_inputs(schema) -> InputSpec:
    """The inputs an MLflow input schema (``mlflow.types.Schema``, or None) describes."""
    if schema is None or not schema.inputs:
        return InputSpec("any", None, (), None)
    if schema.is_tensor_spec():
        specs = schema.inputs
        shapes = tuple(tuple(s.shape) for s in specs)
        dtypes = tuple(str(np.dtype(s.type)) for s in specs)
        required = (True,) * len(specs)
        if len(specs) == 1 and specs[0].name is None:
            shape = shapes[0]
            width = shape[1] if len(shape) == 2 and shape[1] > 0 else (1 if len(shape) == 1 else None)
            scalar = _np_to_spark(specs[0].type)
            return InputSpec("tensor", None, (scalar,) * (width or 0), width, dtypes[0], dtypes, required, shapes)
        names = tuple(str(s.name) for s in specs)
        return InputSpec("columns", names, tuple(_tensor_to_spark(s) for s in specs), len(names), None, dtypes,
                         required, shapes)
    names = tuple(str(c.name) if c.name is not None else str(i) for i, c in enumerate(schema.inputs))
    types = []
    for col in schema.inputs:
        try:
            types.append(mlflow_type_to_spark(col.type))
        except BadInput:
            types.append(None)
    has_names = schema.has_input_names()
    type_names = tuple(getattr(c.type, "name", None) or repr(c.type) for c in schema.inputs)
    return InputSpec("columns" if has_names else "tensor", names if has_names else None, tuple(types),
                     len(names), None, type_names, tuple(bool(c.required) for c in schema.inputs))


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
