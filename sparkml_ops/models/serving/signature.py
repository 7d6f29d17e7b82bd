"""The part of a model signature the fast path can check cheaply: a fixed list of numeric inputs.

A signature qualifies when its inputs are required scalar numeric columns (double, float,
long, integer) or one numeric tensor of shape ``(-1, k)``. Anything else (strings, arrays,
optional columns, no signature) is served through MLflow's own pyfunc path instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FLOAT = frozenset((float, int))  # JSON numbers a float column accepts (bool is excluded: its type is bool)
INT = frozenset((int,))


@dataclass(frozen=True)
class FastSchema:
    """``names`` in the order the model takes them; ``None`` for a positional tensor."""

    names: tuple[str, ...] | None
    kinds: tuple[frozenset, ...]
    dtype: np.dtype
    type_names: tuple[str, ...]
    index: dict[str, int] = field(default_factory=dict)
    int_limits: tuple[int | None, ...] = ()  # per input: integers must lie in [-limit, limit)
    positional: tuple[int, ...] | None = None  # where input j sits in an unnamed row (signature order)
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


_COL_TYPES = {"double": (FLOAT, np.float64), "float": (FLOAT, np.float32),
              "long": (INT, np.int64), "integer": (INT, np.int32)}
_INT_LIMITS = {"long": 2**63, "integer": 2**31}


def fast_schema(input_schema, feature_order: list[str] | None = None) -> tuple[FastSchema | None, str]:
    """A :class:`FastSchema` for ``input_schema`` (an ``mlflow.types.Schema``), or ``None`` and why not.

    ``feature_order`` (a fitted estimator's ``feature_names_in_``) reorders the columns to
    the order the estimator was trained on, when it names the same columns.
    """
    if input_schema is None:
        return None, "the model has no input signature"
    if input_schema.is_tensor_spec():
        specs = input_schema.inputs
        if len(specs) != 1:
            return None, "the signature has several tensors"
        spec = specs[0]
        shape, dtype = tuple(spec.shape), np.dtype(spec.type)
        if len(shape) != 2 or shape[0] != -1 or shape[1] < 1 or dtype.kind not in "fiu":
            return None, f"tensor input {dtype}{shape} is not a numeric (-1, k) matrix"
        kinds = (FLOAT if dtype.kind == "f" else INT,) * shape[1]
        limit = None if dtype.kind == "f" else 2 ** (8 * dtype.itemsize - 1)
        return FastSchema(None, kinds, dtype, (str(dtype),) * shape[1], int_limits=(limit,) * shape[1]), ""
    names, kinds, dtypes, type_names = [], [], [], []
    for spec in input_schema.inputs:
        type_name = getattr(spec.type, "name", None)
        if spec.name is None:
            return None, "the signature has unnamed columns"
        if type_name not in _COL_TYPES:
            return None, f"column {spec.name!r} has type {spec.type}, which is not a numeric scalar"
        if not spec.required:
            return None, f"column {spec.name!r} is optional"
        kind, dtype = _COL_TYPES[type_name]
        names.append(spec.name)
        kinds.append(kind)
        dtypes.append(dtype)
        type_names.append(type_name)
    if len(set(names)) != len(names):
        return None, "the signature repeats a column name"
    positional = None
    if feature_order is not None and sorted(feature_order) == sorted(names) and list(feature_order) != names:
        order = [names.index(n) for n in feature_order]
        names, kinds, type_names = ([seq[i] for i in order] for seq in (names, kinds, type_names))
        positional = tuple(order)  # unnamed rows still come in the signature's order
    dtype = np.result_type(*dtypes)
    return FastSchema(tuple(names), tuple(kinds), dtype, tuple(type_names), {n: j for j, n in enumerate(names)},
                      tuple(_INT_LIMITS.get(t) for t in type_names), positional), ""
