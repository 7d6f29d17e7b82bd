"""``search_registered_models`` / ``search_model_versions``: MLflow's grammar over Arrow.

Filters are parsed by MLflow's own parser and checked with the SQL registry store's rules
(same errors); each clause becomes a boolean mask over the live rows, computed with Arrow
kernels on tables built once per registry version.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils

from sparkml_ops.registry.state import RegistryState, Snapshot
from sparkml_ops.tracking.search import compare

_MV_COLUMNS = {"name": "name", "run_id": "run_id", "source_path": "source", "version_number": "version",
               "creation_timestamp": "creation_time", "last_updated_timestamp": "last_updated_time"}


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


# -- tables built once per registry version ------------------------------------------------

def _version_table(snap: Snapshot) -> pa.Table:
    rows = [(key, snap.models[key]["name"], row) for key, versions in snap.versions.items()
            for row in versions.values() if row["current_stage"] != STAGE_DELETED_INTERNAL]
    return pa.table({
        "model_key": pa.array([r[0] for r in rows], pa.string()),
        "name": pa.array([r[1] for r in rows], pa.string()),
        **{column: pa.array([r[2][column] for r in rows], kind)
           for column, kind in (("version", pa.int64()), ("creation_time", pa.int64()),
                                ("last_updated_time", pa.int64()), ("run_id", pa.string()), ("source", pa.string()))},
    })


def _model_table(snap: Snapshot) -> pa.Table:
    rows = list(snap.models.items())
    return pa.table({
        "model_key": pa.array([k for k, _ in rows], pa.string()),
        "name": pa.array([r["name"] for _, r in rows], pa.string()),
        "creation_time": pa.array([r["creation_time"] for _, r in rows], pa.int64()),
        "last_updated_time": pa.array([r["last_updated_time"] for _, r in rows], pa.int64()),
    })


def _version_tag_values(state: RegistryState, key: str) -> pa.Array:
    def build(snap: Snapshot) -> pa.Array:
        table = state.derive("versions", _version_table)
        keys, versions = table.column("model_key").to_pylist(), table.column("version").to_pylist()
        tags = snap.version_tags
        return pa.array([tags.get((k, v), {}).get(key) for k, v in zip(keys, versions, strict=True)], pa.string())

    return state.derive(f"version_tag:{key}", build)


def _model_tag_values(state: RegistryState, key: str) -> pa.Array:
    def build(snap: Snapshot) -> pa.Array:
        keys = state.derive("models", _model_table).column("model_key").to_pylist()
        return pa.array([snap.model_tags.get(k, {}).get(key) for k in keys], pa.string())

    return state.derive(f"model_tag:{key}", build)


def _prompt_models(snap: Snapshot, *, of_versions: bool) -> set[str]:
    """Models MLflow treats as prompts (excluded from model searches, as in its SQL store)."""
    if of_versions:
        return {k for (k, _), tags in snap.version_tags.items() if tags.get(IS_PROMPT_TAG_KEY) == "true"}
    return {k for k, tags in snap.model_tags.items() if tags.get(IS_PROMPT_TAG_KEY) == "true"}


def _is_querying_prompt(clauses: Sequence[dict[str, Any]]) -> bool:
    for f in clauses:
        if f["type"] == "tag" and f["key"] == IS_PROMPT_TAG_KEY:
            return (f["comparator"] == "=" and f["value"].lower() == "true") or (
                f["comparator"] == "!=" and f["value"].lower() == "false")
    return False


# -- model versions --------------------------------------------------------------------

def _check_version_clause(f: dict[str, Any]) -> Any:
    kind, key, comparator, value = f["type"], f["key"], f["comparator"], f["value"]
    if kind == "attribute":
        if key not in SearchModelVersionUtils.VALID_SEARCH_ATTRIBUTE_KEYS:
            raise _invalid(f"Invalid attribute name: {key}")
        if key in SearchModelVersionUtils.NUMERIC_ATTRIBUTES:
            if comparator not in SearchModelVersionUtils.VALID_NUMERIC_ATTRIBUTE_COMPARATORS:
                raise _invalid(f"Invalid comparator for attribute {key}: {comparator}")
            if isinstance(value, float):
                raise _invalid(f"Invalid value for numeric attribute '{key}': {value!r}")
            try:
                return int(value)
            except (TypeError, ValueError) as exc:
                raise _invalid(f"Invalid value for numeric attribute '{key}': {value!r}") from exc
        if comparator not in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS or (
                comparator in ("IN", "NOT IN") and key not in ("run_id", "name")):
            raise _invalid(f"Invalid comparator for attribute: {comparator}")
        return value
    if kind == "tag":
        if comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise _invalid(f"Invalid comparator for tag: {comparator}")
        return value
    raise _invalid(f"Invalid token type: {kind}")


@lru_cache(maxsize=256)
def _parsed_version_filter(filter_string: str | None) -> tuple[tuple[dict[str, Any], ...], tuple[Any, ...]]:
    """Parsed and checked once per distinct filter (MLflow's parser costs milliseconds); read-only."""
    clauses = tuple(SearchModelVersionUtils.parse_search_filter(filter_string))
    return clauses, tuple(_check_version_clause(f) for f in clauses)


def version_order(order_by: Sequence[str] | None) -> list[tuple[str, bool]]:
    """(column, ascending) pairs, with MLflow's defaults and tie-breakers."""
    return list(_version_order(tuple(order_by or ())))


@lru_cache(maxsize=256)
def _version_order(order_by: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    clauses = list(order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"])
    keys: list[tuple[str, bool]] = []
    for clause in clauses:
        _, key, ascending = SearchModelVersionUtils.parse_order_by_for_search_model_versions(clause)
        if key not in SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS:
            raise _invalid(f"Invalid order by key '{key}' specified. Valid keys are "
                           f"{SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS}")
        column = _MV_COLUMNS[key]
        if any(c == column for c, _ in keys):
            raise MlflowException(f"`order_by` contains duplicate fields: {clauses}")
        keys.append((column, ascending))
    if all(c != "name" for c, _ in keys):
        keys.append(("name", True))
    if all(c != "version" for c, _ in keys):
        keys.append(("version", False))
    return tuple(keys)


def search_versions(state: RegistryState, filter_string: str | None, order_by: Sequence[str] | None,
                    offset: int, limit: int) -> tuple[list[tuple[str, int]], bool]:
    """(model_key, version) of one page, and whether more follow."""
    clauses, operands = _parsed_version_filter(filter_string)
    sort_keys = version_order(order_by)
    table = state.derive("versions", _version_table)
    mask = np.ones(table.num_rows, dtype=bool)
    querying_prompt = _is_querying_prompt(clauses)
    for f, operand in zip(clauses, operands, strict=True):
        if f["type"] == "tag" and f["key"] == IS_PROMPT_TAG_KEY:
            continue  # as MLflow's SQL store: the prompt marker only selects prompts or models
        if f["type"] == "tag":
            values = _version_tag_values(state, f["key"])
        else:
            values = table.column(_MV_COLUMNS[f["key"]])
        mask &= compare(values, f["comparator"], operand)
    if not querying_prompt:
        prompts = state.derive("version_prompts", lambda s: _prompt_models(s, of_versions=True))
        if prompts:
            mask &= ~pc.is_in(table.column("model_key"), value_set=pa.array(list(prompts), pa.string())).to_numpy(
                zero_copy_only=False)
    return _page(table.filter(pa.array(mask)), sort_keys, offset, limit, ("model_key", "version"))


# -- registered models -----------------------------------------------------------------

def _check_model_clause(f: dict[str, Any]) -> None:
    kind, key, comparator = f["type"], f["key"], f["comparator"]
    if kind == "attribute":
        if key != "name":
            raise _invalid(f"Invalid attribute name: {key}")
        if comparator not in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"):
            raise _invalid(f"Invalid comparator for attribute: {comparator}")
    elif kind == "tag":
        if comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise _invalid(f"Invalid comparator for tag: {comparator}")
    else:
        raise _invalid(f"Invalid token type: {kind}")


def model_order(order_by: Sequence[str] | None) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for clause in order_by or []:
        token, ascending = SearchUtils.parse_order_by_for_search_registered_models(clause)
        if token == "name":
            column = "name"
        elif token in SearchUtils.VALID_TIMESTAMP_ORDER_BY_KEYS:
            column = "last_updated_time"
        else:
            raise _invalid(f"Invalid order by key '{token}' specified.Valid keys are "
                           f"'{SearchUtils.RECOMMENDED_ORDER_BY_KEYS_REGISTERED_MODELS}'")
        if any(c == column for c, _ in keys):
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        keys.append((column, ascending))
    if all(c != "name" for c, _ in keys):
        keys.append(("name", True))
    return keys


def search_models(state: RegistryState, filter_string: str | None, order_by: Sequence[str] | None,
                  offset: int, limit: int) -> tuple[list[str], bool]:
    """Model keys of one page, and whether more follow."""
    clauses = SearchModelUtils.parse_search_filter(filter_string)
    for f in clauses:
        _check_model_clause(f)
    sort_keys = model_order(order_by)
    table = state.derive("models", _model_table)
    mask = np.ones(table.num_rows, dtype=bool)
    for f in clauses:
        if f["type"] == "tag" and f["key"] == IS_PROMPT_TAG_KEY:
            continue
        values = _model_tag_values(state, f["key"]) if f["type"] == "tag" else table.column("name")
        mask &= compare(values, f["comparator"], f["value"])
    if not _is_querying_prompt(clauses):
        prompts = state.derive("model_prompts", lambda s: _prompt_models(s, of_versions=False))
        if prompts:
            mask &= ~pc.is_in(table.column("model_key"), value_set=pa.array(list(prompts), pa.string())).to_numpy(
                zero_copy_only=False)
    keys, more = _page(table.filter(pa.array(mask)), sort_keys, offset, limit, ("model_key",))
    return [k[0] for k in keys], more


def _page(table: pa.Table, sort_keys: list[tuple[str, bool]], offset: int, limit: int,
          columns: tuple[str, ...]) -> tuple[list[tuple[Any, ...]], bool]:
    if table.num_rows == 0:
        return [], False
    spec = [(c, "ascending" if asc else "descending") for c, asc in sort_keys]
    if table.num_rows > offset + limit + 1:  # top-k: a partial sort of what the page needs
        order = pc.select_k_unstable(table, k=offset + limit + 1, sort_keys=spec)
    else:
        order = pc.sort_indices(table, sort_keys=spec)
    picked = table.take(order).slice(offset, limit + 1)
    values = [picked.column(c).to_pylist() for c in columns]
    rows = list(zip(*values, strict=True))
    return rows[:limit], len(rows) > limit
