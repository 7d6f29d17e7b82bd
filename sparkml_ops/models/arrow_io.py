"""Arrow in, model input out; model output in, Arrow out — without going row by row.

``to_arrow`` accepts whatever a model returns (numpy arrays of any rank, pandas Series or
DataFrames, dicts of arrays as onnxruntime gives them, lists of dicts) and builds an Arrow
array of exactly the Spark result type: scalars, arrays, structs and nested structs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def column_to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric column as numpy (zero-copy when it has no nulls; nulls become NaN)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count and pa.types.is_integer(array.type):
        array = array.cast(pa.float64())
    return array.to_numpy(zero_copy_only=False)


def to_matrix(arrays: Sequence[pa.Array], dtype: str | np.dtype = "float64") -> np.ndarray:
    """Columns side by side as one 2-D array (C order, what sklearn and onnxruntime prefer)."""
    n = len(arrays[0]) if arrays else 0
    out = np.empty((n, len(arrays)), dtype=np.dtype(dtype))
    for j, array in enumerate(arrays):
        out[:, j] = column_to_numpy(array)
    return out


def to_frame(arrays: Sequence[pa.Array], names: Sequence[str]):
    """Columns as a pandas DataFrame named ``names`` (for the generic pyfunc path)."""
    table = pa.Table.from_arrays([a if isinstance(a, (pa.Array, pa.ChunkedArray)) else pa.array(a) for a in arrays],
                                 names=list(names))
    return table.to_pandas()


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type == target:
        return array
    try:
        return pc.cast(array, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_floating(array.type) and pa.types.is_floating(target):
            return pc.cast(array, target, safe=False)
        if pa.types.is_floating(array.type) and pa.types.is_integer(target):
            raise TypeError(f"predictions of type {array.type} have fractions and cannot become {target}") from None
        raise


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _ndarray_to_list(values: np.ndarray, target: pa.DataType) -> pa.Array:
    """An (n, k[, m...]) numeric array as nested Arrow lists, without Python objects."""
    if values.ndim == 1:
        return _cast(pa.array(values), target)
    if not _is_list(target):
        raise TypeError(f"a {values.ndim}-D prediction of shape {values.shape} cannot become {target}")
    n, k = values.shape[0], values.shape[1]
    inner = _ndarray_to_list(np.ascontiguousarray(values).reshape((n * k, *values.shape[2:])), target.value_type)
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, inner)
    return _cast(lists, target)


def _struct(value: Any, target: pa.StructType, n: int) -> pa.Array:
    import pandas as pd

    names = [target.field(i).name for i in range(target.num_fields)]
    if isinstance(value, pd.DataFrame):
        columns = {str(c): value[c] for c in value.columns}
        ordered = list(value.columns)
    elif isinstance(value, dict):
        columns = {str(k): v for k, v in value.items()}
        ordered = list(value.keys())
    elif isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype != object:
        if value.shape[1] != len(names):
            raise TypeError(f"a prediction of shape {value.shape} cannot fill the {len(names)} fields {names}")
        return pa.StructArray.from_arrays([to_arrow(value[:, j], target.field(j).type, n) for j in range(len(names))],
                                          fields=list(target))
    else:
        items = value.tolist() if isinstance(value, (np.ndarray, pd.Series)) else list(value)
        return pa.array(items, type=target)
    if all(name in columns for name in names):
        parts = [columns[name] for name in names]
    elif len(columns) == len(names):  # unnamed outputs: by position
        parts = [columns[str(c)] for c in ordered]
    else:
        raise TypeError(f"the model returned fields {sorted(columns)} but the result type needs {names}")
    return pa.StructArray.from_arrays([to_arrow(p, target.field(j).type, n) for j, p in enumerate(parts)],
                                      fields=list(target))


def to_arrow(value: Any, target: pa.DataType, n: int) -> pa.Array:
    """``value`` (a model's output for ``n`` rows) as an Arrow array of type ``target``."""
    import pandas as pd

    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        out = _cast(value, target)
    elif pa.types.is_struct(target):
        out = _struct(value, target, n)
    else:
        if isinstance(value, dict):
            if len(value) != 1:
                raise TypeError(f"the model returned {len(value)} outputs {sorted(value)} but the result type "
                                f"{target} holds one; pass a struct result_type")
            value = next(iter(value.values()))
        if isinstance(value, pd.DataFrame):
            if value.shape[1] == 1:
                value = value.iloc[:, 0]
            elif _is_list(target):
                value = value.to_numpy()
            else:
                raise TypeError(f"the model returned {value.shape[1]} columns {list(value.columns)} but the "
                                f"result type {target} holds one; pass a struct result_type")
        if isinstance(value, pd.Series):
            value = value.to_numpy() if value.dtype != object else value.tolist()
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            try:
                value = np.stack(value)
            except ValueError:
                value = [v.tolist() for v in value]
        if isinstance(value, np.ndarray) and value.dtype != object:
            if value.ndim == 2 and value.shape[1] == 1 and not _is_list(target):
                value = value[:, 0]
            if value.ndim == 1 and not _is_list(target):
                out = _cast(pa.array(value), target)
            else:
                out = _ndarray_to_list(value, target)
        else:
            items = value.tolist() if isinstance(value, np.ndarray) else list(value)
            out = pa.array(items, type=target, from_pandas=True)
    if len(out) != n:
        raise ValueError(f"the model returned {len(out)} predictions for {n} rows")
    return out
