"""Arrow-native bulk logging: a whole table of metrics or params for one run in one call.

A training curve or a Spark job's per-partition results arrive as columns; turning them into
millions of ``Metric`` objects for ``log_batch`` (1,000 per call) costs far more than the
logging itself. :func:`log_table` validates the columns with pyarrow compute, applying
MLflow's rules to each *distinct* key (so the rules and messages stay MLflow's own), and hands
the columns to the lake as one write-ahead-log record: durable on return, like ``log_batch``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    _validate_length_limit,
    _validate_metric_name,
    _validate_param_name,
)

from sparkml_ops.errors import BadInput

Kind = Literal["auto", "metrics", "params"]
METRIC_COLUMNS = ("key", "value", "step", "timestamp")
PARAM_COLUMNS = ("key", "value")


def log_table(run_id: str, table: Any, *, kind: Kind = "auto", tracking_uri: str | None = None) -> int:
    """Log a table of metrics or params to ``run_id`` in one call; returns the rows logged.

    ``table`` is a pyarrow Table or RecordBatch, a pandas DataFrame, or anything exposing the
    Arrow stream interface. Metrics have columns ``key``, ``value`` and optionally ``step``
    (default 0) and ``timestamp`` (milliseconds, default now); params have ``key``, ``value``.
    ``kind="auto"`` picks metrics when there is a ``step`` or ``timestamp`` column or the values
    are numeric, params otherwise. Validation is ``log_batch``'s (MLflow's key rules, an active
    run, params never change value) and nothing is written when any row fails it.
    The tracking URI (``tracking_uri`` or MLflow's current one) must be a ``delta:`` root.

    Args:
        run_id: an active run of the root.
        table: the rows, as above.
        kind: ``"metrics"``, ``"params"`` or ``"auto"``.
        tracking_uri: a ``delta:`` URI (default: MLflow's current tracking URI).

    Raises:
        MlflowException: ``INVALID_PARAMETER_VALUE`` for a store that is not ``delta:``, a bad
            column or key, a changed param value or an inactive run (nothing is written);
            ``RESOURCE_DOES_NOT_EXIST`` for an unknown run.

    Example: ``log_table(run_id, pa.table({"key": ["loss"] * 3, "value": [0.9, 0.5, 0.3], "step": [0, 1, 2]}))``.
    """
    from mlflow.tracking._tracking_service.utils import _get_store

    from sparkml_ops.tracking.mlflow_errors import to_mlflow
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = _get_store(tracking_uri)
    if not isinstance(store, DeltaTrackingStore):
        raise to_mlflow(BadInput(
            f"log_table needs a 'delta:' tracking URI; the current store is {type(store).__name__} "
            "(call mlflow.set_tracking_uri('delta:/path') or pass tracking_uri=)"))
    return store.log_table(run_id, table, kind=kind)


def prepare(table: Any, kind: Kind) -> tuple[Literal["metrics", "params"], pa.Table]:
    """Validate ``table`` and return its kind and normalised columns (nothing is written)."""
    data = as_arrow(table)
    if kind not in ("auto", "metrics", "params"):
        raise BadInput(f"kind={kind!r} is not one of 'auto', 'metrics', 'params'")
    if kind == "auto":
        kind = "metrics" if _looks_like_metrics(data) else "params"
    if kind == "metrics":
        return kind, _metrics(data)
    return kind, _params(data)


def as_arrow(table: Any) -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch, pandas DataFrame or Arrow stream producer."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    if type(table).__module__.startswith("pandas") and hasattr(table, "columns"):
        try:
            return pa.Table.from_pandas(table, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise BadInput(f"the DataFrame's columns cannot be converted to Arrow: {exc}") from exc
    if hasattr(table, "__arrow_c_stream__"):
        return pa.table(table)
    raise BadInput(f"log_table takes a pyarrow Table or RecordBatch or a pandas DataFrame, not {type(table).__name__}")


def bulk_columns(run_id: str, data: pa.Table, stamp: int) -> dict[str, Any]:
    """The lake record for ``data``: its Arrow columns plus the run id and ``seq``, run-end
    encoded (one value each: no 10M-fold copy in memory or in the write-ahead log)."""
    n = data.num_rows
    columns: dict[str, Any] = {name: data.column(name) for name in data.column_names}
    columns["run_id"] = constant(run_id, n, pa.string())
    columns["seq"] = constant(stamp, n, pa.int64())
    return columns


def constant(value: Any, n: int, dtype: pa.DataType) -> pa.Array:
    """``n`` copies of ``value`` as one run (the lake decodes it when it commits)."""
    return pa.RunEndEncodedArray.from_arrays(pa.array([n], pa.int64()), pa.array([value], dtype))


def check_params_unchanged(run_id: str, data: pa.Table, known: dict[str, str]) -> None:
    """Params are immutable: a key already logged with another value is refused (MLflow's message)."""
    if not known:
        return
    old = pa.table({"key": pa.array(list(known), pa.string()), "old": pa.array(list(known.values()), pa.string())})
    joined = data.join(old, "key", join_type="inner")
    changed = joined.filter(pc.not_equal(joined.column("value"), joined.column("old")))
    if changed.num_rows:
        row = changed.slice(0, 1).to_pylist()[0]
        raise BadInput(
            f"Changing param values is not allowed. Param with key='{row['key']}' was already logged "
            f"with value='{row['old']}' for run ID='{run_id}'. Attempted logging new value '{row['value']}'."
        )


# -- validation -------------------------------------------------------------------------


def _looks_like_metrics(data: pa.Table) -> bool:
    names = set(data.column_names)
    if names & {"step", "timestamp"}:
        return True
    return "value" in names and _is_number(data.schema.field("value").type)


def _is_number(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)


def _check_columns(data: pa.Table, required: tuple[str, ...], allowed: tuple[str, ...], what: str) -> None:
    names = data.column_names
    missing = [c for c in required if c not in names]
    extra = [c for c in names if c not in allowed]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if missing or extra or duplicated:
        problems = "; ".join(p for p in (
            missing and f"missing {missing}", extra and f"unknown {extra}", duplicated and f"repeated {duplicated}",
        ) if p)
        raise BadInput(f"a {what} table has columns {list(allowed)} ({', '.join(required)} required); "
                       f"got {names}: {problems}")


def _strings(column: pa.ChunkedArray, name: str, what: str) -> pa.ChunkedArray:
    dtype = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)):
        raise BadInput(f"{what} column '{name}' must hold strings, not {column.type}")
    if column.null_count:
        raise BadInput(f"{what} column '{name}' has {column.null_count} missing values (row "
                       f"{_first_null(column)}); every row needs one")
    return column


def _first_null(column: pa.ChunkedArray) -> int:
    return int(pc.index(pc.is_null(column), True).as_py())


def _distinct_keys(keys: pa.ChunkedArray) -> list[str]:
    """The keys used (a dictionary may also hold unused ones, which must not be validated)."""
    if not pa.types.is_dictionary(keys.type):
        return pc.unique(keys).to_pylist()
    used: set[str] = set()
    for chunk in keys.chunks:
        used.update(chunk.dictionary.take(pc.unique(chunk.indices)).to_pylist())
    return sorted(used)


def _metrics(data: pa.Table) -> pa.Table:
    _check_columns(data, ("key", "value"), METRIC_COLUMNS, "metrics")
    n = data.num_rows
    keys = _strings(data.column("key"), "key", "metrics")  # kept as given: encoding costs more than it saves
    for key in _distinct_keys(keys):
        _validate_metric_name(key, "key")
    value = data.column("value")
    if not _is_number(value.type):
        raise BadInput(f"metrics column 'value' must be numeric (MLflow stores a double), not {value.type}")
    if value.null_count:
        raise BadInput(f"metrics column 'value' has {value.null_count} missing values (row {_first_null(value)}); "
                       "MLflow requires a value for every metric point (NaN is allowed)")
    columns: dict[str, Any] = {"key": keys, "value": value.cast(pa.float64())}
    columns["step"] = _integers(data, "step", n, 0, allow_negative=True)
    columns["timestamp"] = _integers(data, "timestamp", n, int(time.time() * 1000), allow_negative=False)
    return pa.table(columns)


def _integers(data: pa.Table, name: str, n: int, default: int, *, allow_negative: bool) -> pa.ChunkedArray | pa.Array:
    if name not in data.column_names:
        return constant(default, n, pa.int64())
    column = data.column(name)
    if pa.types.is_timestamp(column.type) and name == "timestamp":
        column = column.cast(pa.timestamp("ms", column.type.tz)).cast(pa.int64())
    if not pa.types.is_integer(column.type):
        unit = ", milliseconds since the epoch" if name == "timestamp" else ""
        raise BadInput(f"metrics column '{name}' must hold integers (a 64-bit long{unit}), not {column.type}")
    column = column.cast(pa.int64())
    if column.null_count:
        column = pc.fill_null(column, default)  # a missing step or timestamp takes MLflow's default
    if not allow_negative and n:
        low = pc.min(column).as_py()
        if low is not None and low < 0:
            raise BadInput(f"metrics column '{name}' has negative value {low}; MLflow's {name} must be a "
                           "nonnegative long (64-bit integer)")
    return column


def _params(data: pa.Table) -> pa.Table:
    _check_columns(data, PARAM_COLUMNS, PARAM_COLUMNS, "params")
    keys = _strings(data.column("key"), "key", "params")
    if pa.types.is_dictionary(keys.type):
        keys = keys.cast(keys.type.value_type)
    keys = keys.cast(pa.string())
    if len(pc.unique(keys)) != data.num_rows:
        counts = pc.value_counts(keys)
        dupes = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1)).to_pylist()
        raise BadInput(f"Duplicate parameter keys have been submitted: {dupes}. Please ensure "
                       "the request contains only one param value per param key.")  # MLflow's message
    for key in keys.to_pylist():
        _validate_param_name(key, "key")
        _validate_length_limit("Param key", MAX_ENTITY_KEY_LENGTH, key)
    return pa.table({"key": keys, "value": _param_values(data.column("value"))})


def _param_values(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    if column.null_count:
        raise BadInput(f"params column 'value' has {column.null_count} missing values (row {_first_null(column)}); "
                       "every param needs a value")
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        values = column.cast(pa.string())
    elif _is_number(column.type) or pa.types.is_boolean(column.type):
        values = pa.array([str(v) for v in column.to_pylist()], pa.string())  # Python's str(), as log_param
    else:
        raise BadInput(f"params column 'value' must hold strings, numbers or booleans, not {column.type}")
    too_long = pc.greater(pc.utf8_length(values), MAX_PARAM_VAL_LENGTH)
    if pc.any(too_long).as_py():  # MLflow's rule: truncated (MLFLOW_TRUNCATE_LONG_VALUES) or refused
        values = pa.array([_validate_length_limit("Param value", MAX_PARAM_VAL_LENGTH, v, truncate=True)
                           for v in values.to_pylist()], pa.string())
    return values
