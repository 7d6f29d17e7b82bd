"""MLflow's search grammar evaluated over Arrow columns.

Filter strings are parsed by MLflow's own parser (so the grammar and its errors are
exactly MLflow's) and never pasted into SQL; each comparison becomes a boolean mask over
the candidate runs or experiments, computed with Arrow kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils

from sparkml_ops.errors import BadInput
from sparkml_ops.tracking.state import Grouped, TrackingState

_NUMERIC_OPS = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
                ">": pc.greater, ">=": pc.greater_equal}
_RUN_ATTRIBUTE_COLUMNS = {"run_id", "run_name", "status", "user_id", "artifact_uri",
                          "start_time", "end_time", "lifecycle_stage", "experiment_id"}


def compare(values: pa.Array | pa.ChunkedArray, comparator: str, operand: Any) -> np.ndarray:
    """Boolean mask of ``values <comparator> operand``; missing values never match."""
    comparator = comparator.upper()
    if comparator == "IS NULL":
        return pc.is_null(values).to_numpy(zero_copy_only=False)
    if comparator == "IS NOT NULL":
        return pc.is_valid(values).to_numpy(zero_copy_only=False)
    if comparator in ("LIKE", "ILIKE"):
        # MLflow's LIKE has no escape character: a backslash in the pattern is literal
        result = pc.match_like(values, operand.replace("\\", "\\\\"), ignore_case=comparator == "ILIKE")
    elif comparator in ("IN", "NOT IN"):
        result = pc.is_in(values, value_set=pa.array(list(operand), type=values.type))
        if comparator == "NOT IN":
            result = pc.invert(result)
        result = pc.if_else(pc.is_null(values), False, result)
    elif comparator in _NUMERIC_OPS:
        scalar = pa.scalar(operand, type=values.type)
        result = _NUMERIC_OPS[comparator](values, scalar)
    else:
        raise BadInput(f"comparator {comparator!r} is not supported here")
    return pc.fill_null(result, False).to_numpy(zero_copy_only=False)


def aligned_values(grouped: Grouped, key: str, ids: pa.Array | pa.ChunkedArray, id_column: str = "run_id") -> pa.Array:
    """The ``value`` of ``key`` for each id, in ``ids`` order (null where absent)."""
    table = grouped.table
    if table.num_rows == 0:
        return pa.nulls(len(ids), type=table.schema.field("value").type)
    rows = grouped.key_rows(key)
    positions = pc.index_in(ids, value_set=rows.column(id_column))
    return rows.column("value").take(positions)


def _numeric_operand(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{what} must be compared with a number, got {value!r}") from exc


# -- runs ------------------------------------------------------------------------------

ValueKind = Literal["metric", "parameter", "tag"]


class RunValues(Protocol):
    """Where a search finds the runs' latest params, tags and metrics."""

    def values(self, kind: ValueKind, key: str, runs: pa.Table) -> pa.Array | pa.ChunkedArray:
        """The current value of ``key`` for each row of ``runs`` (null where it has none)."""
        ...

    def datasets(self) -> pa.Table:
        """The runs' dataset inputs (``run_id``, ``name``, ``digest``, ``context``)."""
        ...


class StateValues:
    """:class:`RunValues` from the in-memory state (every row of the tables)."""

    def __init__(self, state: TrackingState) -> None:
        self.state = state

    def values(self, kind: ValueKind, key: str, runs: pa.Table) -> pa.Array | pa.ChunkedArray:
        grouped = {"metric": self.state.latest_metrics, "parameter": self.state.params,
                   "tag": self.state.tags}[kind]()
        return aligned_values(grouped, key, runs.column("run_id"))

    def datasets(self) -> pa.Table:
        inputs = self.state.inputs().table
        if inputs.num_rows == 0:
            return inputs
        return inputs.filter(pc.equal(inputs.column("kind"), "dataset"))


def attribute_columns(filter_string: str | None, order_by: Sequence[str] | None) -> set[str]:
    """Run columns a filter and an order refer to (parsed as MLflow parses them; errors come later)."""
    names: set[str] = set()
    try:
        for clause in SearchUtils.parse_search_filter(filter_string) if filter_string else []:
            if clause["type"] == "attribute":
                names.add(SearchUtils.translate_key_alias(clause["key"]))
        for text in order_by or []:
            kind, key, _ = SearchUtils.parse_order_by_for_search_runs(text)
            if kind == "attribute":
                names.add(SearchUtils.translate_key_alias(key))
    except Exception:  # an invalid filter: the search itself raises MLflow's error for it
        return set(_RUN_ATTRIBUTE_COLUMNS)
    return names & _RUN_ATTRIBUTE_COLUMNS


def filter_runs(state: RunValues, runs: pa.Table, filter_string: str | None) -> pa.Table:
    if not filter_string:
        return runs
    clauses = SearchUtils.parse_search_filter(filter_string)
    for clause in clauses:  # bad filters fail even when nothing would match (as MLflow)
        _check_run_comparator(clause)
    if runs.num_rows == 0:
        return runs
    mask = np.ones(runs.num_rows, dtype=bool)
    for clause in clauses:
        mask &= _run_clause_mask(state, runs, clause)
        if not mask.any():
            break
    return runs.filter(pa.array(mask))


def _check_run_comparator(clause: dict[str, Any]) -> None:
    """MLflow's per-type comparator rules (e.g. no ``>`` on params); its checks raise."""
    kind, comparator = clause["type"], clause["comparator"].upper()
    key = SearchUtils.translate_key_alias(clause["key"])
    for check in (SearchUtils.is_metric, SearchUtils.is_param, SearchUtils.is_tag, SearchUtils.is_dataset):
        if check(kind, comparator):
            return
    if SearchUtils.is_attribute(kind, key, comparator):
        return
    raise BadInput(f"invalid search expression type {kind!r}")


def _run_clause_mask(state: RunValues, runs: pa.Table, clause: dict[str, Any]) -> np.ndarray:
    kind, comparator, value = clause["type"], clause["comparator"].upper(), clause["value"]
    key = SearchUtils.translate_key_alias(clause["key"])
    run_ids = runs.column("run_id")
    if kind == "metric":
        values = state.values("metric", key, runs)
        operand = None if value is None else _numeric_operand(value, f"metrics.{key}")
        return compare(values, comparator, operand)
    if kind in ("parameter", "tag"):
        return compare(state.values(kind, key, runs), comparator, value)
    if kind == "attribute":
        if key not in _RUN_ATTRIBUTE_COLUMNS:
            raise BadInput(f"attribute {key!r} cannot be searched; valid: {sorted(_RUN_ATTRIBUTE_COLUMNS)}")
        column = runs.column(key)
        if key in ("start_time", "end_time"):
            value = int(_numeric_operand(value, key))
        return compare(column, comparator, value)
    if kind == "dataset":
        datasets = state.datasets()
        if datasets.num_rows == 0:
            return np.zeros(runs.num_rows, dtype=bool)
        if key not in ("name", "digest", "context"):
            raise BadInput(f"dataset attribute {key!r} cannot be searched; valid: name, digest, context")
        hits = datasets.filter(pa.array(compare(datasets.column(key), comparator, value)))
        return pc.is_in(run_ids, value_set=hits.column("run_id")).to_numpy(zero_copy_only=False)
    raise BadInput(f"invalid search expression type {kind!r}")


def order_runs(state: RunValues, runs: pa.Table, order_by: Sequence[str] | None) -> pa.Table:
    """MLflow's order: the given keys (missing values last), then start_time DESC, run_id."""
    parsed = [SearchUtils.parse_order_by_for_search_runs(clause) for clause in order_by or []]
    if runs.num_rows == 0:
        return runs
    columns: dict[str, pa.Array] = {}
    sort_keys: list[tuple[str, str]] = []
    for i, (clause, (kind, key, ascending)) in enumerate(zip(order_by or [], parsed, strict=True)):
        key = SearchUtils.translate_key_alias(key)
        if kind in ("metric", "parameter", "tag"):
            values = state.values(kind, key, runs)
        elif kind == "attribute" and key in _RUN_ATTRIBUTE_COLUMNS:
            values = runs.column(key)
        else:
            raise BadInput(f"invalid order_by clause {clause!r}")
        _add_sort_column(columns, sort_keys, f"k{i}", values, ascending)
    columns["start_time"] = runs.column("start_time")
    columns["run_id"] = runs.column("run_id")
    sort_keys += [("start_time", "descending"), ("run_id", "ascending")]
    order = pc.sort_indices(pa.table(columns), sort_keys=sort_keys)
    return runs.take(order)


def _add_sort_column(columns: dict, sort_keys: list, name: str, values: Any, ascending: bool) -> None:
    """Missing values sort last, NaN just before them, in either direction (as MLflow)."""
    values = pa.chunked_array([values]) if isinstance(values, pa.Array) else values
    missing = pc.is_null(values)
    rank = pc.if_else(missing, 2, 0)
    if pa.types.is_floating(values.type):
        nan = pc.fill_null(pc.is_nan(values), False)
        rank = pc.if_else(nan, 1, rank)
    columns[f"{name}_rank"] = rank
    columns[name] = values
    sort_keys.append((f"{name}_rank", "ascending"))
    sort_keys.append((name, "ascending" if ascending else "descending"))


def paginate(table: pa.Table, page_token: str | None, max_results: int | None) -> tuple[pa.Table, str | None]:
    offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    if max_results is None:
        return table.slice(offset), None
    page = table.slice(offset, max_results)
    end = offset + max_results
    token = SearchUtils.create_page_token(end) if end < table.num_rows else None
    return page, token


# -- experiments -----------------------------------------------------------------------

_EXPERIMENT_ATTRIBUTES = {"name", "creation_time", "last_update_time", "experiment_id"}


def filter_experiments(state: TrackingState, experiments: pa.Table, filter_string: str | None) -> pa.Table:
    if not filter_string:
        return experiments
    clauses = SearchExperimentsUtils.parse_search_filter(filter_string)
    for clause in clauses:  # MLflow's per-type comparator rules; its checks raise
        kind, key, comparator = clause["type"], clause["key"], clause["comparator"].upper()
        SearchExperimentsUtils.is_string_attribute(kind, key, comparator)
        SearchExperimentsUtils.is_numeric_attribute(kind, key, comparator)
        SearchExperimentsUtils.is_tag(kind, comparator)
    if experiments.num_rows == 0:
        return experiments
    mask = np.ones(experiments.num_rows, dtype=bool)
    for clause in clauses:
        kind, key, comparator, value = clause["type"], clause["key"], clause["comparator"], clause["value"]
        if kind == "attribute" and key in _EXPERIMENT_ATTRIBUTES:
            column = experiments.column(key)
            if pa.types.is_integer(column.type):  # MLflow compares times as floats
                column, value = column.cast(pa.float64()), _numeric_operand(value, key)
            mask &= compare(column, comparator, value)
        elif kind == "tag":
            values = aligned_values(state.experiment_tags(), key, experiments.column("experiment_id"),
                                    id_column="experiment_id")
            mask &= compare(values, comparator, value)
        else:
            raise BadInput(f"invalid experiment search clause on {kind} {key!r}")
    return experiments.filter(pa.array(mask))


def order_experiments(experiments: pa.Table, order_by: Sequence[str] | None) -> pa.Table:
    """MLflow's order: the given keys (default: newest first), ties by experiment_id DESC."""
    clauses = list(order_by or ["creation_time DESC", "experiment_id ASC"])
    parsed = [SearchExperimentsUtils.parse_order_by_for_search_experiments(clause) for clause in clauses]
    for clause, (kind, key, _) in zip(clauses, parsed, strict=True):
        if kind != "attribute" or key not in _EXPERIMENT_ATTRIBUTES:
            raise BadInput(f"invalid order_by clause {clause!r} for experiments: only attributes "
                           f"{sorted(_EXPERIMENT_ATTRIBUTES)} can order experiments")
    if experiments.num_rows == 0:
        return experiments
    columns: dict[str, Any] = {}
    sort_keys: list[tuple[str, str]] = []
    has_id = False
    for i, (_, key, ascending) in enumerate(parsed):
        has_id = has_id or key == "experiment_id"
        _add_sort_column(columns, sort_keys, f"k{i}", experiments.column(key), ascending)
    if not has_id:
        _add_sort_column(columns, sort_keys, "tie", experiments.column("experiment_id"), False)
    return experiments.take(pc.sort_indices(pa.table(columns), sort_keys=sort_keys))
