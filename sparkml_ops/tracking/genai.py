"""The GenAI half of MLflow's store interface: empty reads, refused writes.

MLflow's web UI and client call trace, assessment, evaluation-dataset, scorer, review-queue,
gateway and MCP-registry APIs on every store (the experiment overview asks for trace
metrics, the run page for linked traces). A Delta root holds none of these, so every *read*
answers what a store without such objects answers: an empty list or page, or "not found"
for one object by id. Every *write* raises one :class:`NotSupported` naming the call, which
the REST layer maps to 400 — never MLflow's bare ``NotImplementedError`` (a 500).

Which methods are writes is derived from MLflow's own interface classes, so a call added in
a newer MLflow is refused clearly rather than answered with a 500.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities.dataset_summary import _DatasetSummary
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking.abstract_store import AbstractStore

from sparkml_ops.errors import NotFound, NotSupported
from sparkml_ops.tracking.compat import store_interfaces

UNSUPPORTED_MESSAGE = (
    "'{name}' (MLflow GenAI: traces, assessments, scorers, evaluation datasets, review queues, "
    "gateway, MCP servers) is not supported by the sparkml_ops Delta tracking store; use an "
    "MLflow tracking server with a SQL backend for GenAI features."
)


def _empty_list(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
    return []


def _empty_page(self: Any, *args: Any, **kwargs: Any) -> PagedList:
    return PagedList([], None)


def _empty_search(self: Any, *args: Any, **kwargs: Any) -> tuple[list[Any], None]:
    return [], None


def _not_found(what: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        ident = args[0] if args else next(iter(kwargs.values()), None)
        raise NotFound(f"{what} {ident!r} not found: a Delta tracking root holds no GenAI {what}s.")

    return method


def _empty_user_queue(self: Any, experiment_id: str, *, user: str) -> Any:
    """The user's personal review queue, empty and never stored (the UI opens it on its review page)."""
    from mlflow.genai.review_queues import ReviewQueueType
    from mlflow.genai.review_queues.review_queues import ReviewQueue
    from mlflow.genai.review_queues.validation import normalize_user

    self.get_experiment(experiment_id)  # NotFound for an unknown experiment
    name = normalize_user(user)
    return ReviewQueue(queue_id=f"user-queue-{experiment_id}-{name}", experiment_id=str(experiment_id), name=name,
                       queue_type=ReviewQueueType.USER, created_by=name, creation_time_ms=0, last_update_time_ms=0)


# Reads the UI and client make, and what a store with no GenAI objects answers.
EMPTY_READS: dict[str, Callable[..., Any]] = {
    # traces
    "search_traces": _empty_search,
    "batch_get_traces": _empty_list,
    "batch_get_trace_infos": _empty_list,
    "find_completed_sessions": _empty_list,
    "query_trace_metrics": _empty_page,
    "get_trace_info": _not_found("trace"),
    "get_trace": _not_found("trace"),
    "get_assessment": _not_found("assessment"),
    "search_issues": _empty_page,
    "get_issue": _not_found("issue"),
    # evaluation datasets
    "search_datasets": _empty_page,
    "get_dataset": _not_found("evaluation dataset"),
    "get_dataset_experiment_ids": _not_found("evaluation dataset"),
    # scorers
    "list_scorers": _empty_list,
    "list_scorers_across_experiments": _empty_list,
    "list_scorer_versions": _empty_list,
    "get_scorer": _not_found("scorer"),
    "get_online_scoring_configs": _empty_list,
    "get_active_online_scorers": _empty_list,
    # labeling
    "list_label_schemas": _empty_page,
    "get_label_schema": _not_found("label schema"),
    "get_label_schema_by_name": _not_found("label schema"),
    "list_review_queues": _empty_page,
    "get_review_queue": _not_found("review queue"),
    "get_review_queue_by_name": _not_found("review queue"),
    "list_review_queue_items": _empty_page,
    "get_or_create_user_queue": _empty_user_queue,
    # AI gateway
    "list_secret_infos": _empty_list,
    "get_secret_info": _not_found("gateway secret"),
    "list_gateway_model_definitions": _empty_list,
    "get_gateway_model_definition": _not_found("gateway model definition"),
    "list_gateway_endpoints": _empty_list,
    "get_gateway_endpoint": _not_found("gateway endpoint"),
    "list_endpoint_bindings": _empty_list,
    "list_budget_policies": _empty_page,
    "get_budget_policy": _not_found("gateway budget policy"),
    "list_gateway_guardrails": _empty_page,
    "get_gateway_guardrail": _not_found("gateway guardrail"),
    "list_endpoint_guardrail_configs": _empty_list,
    # MCP server registry
    "search_mcp_servers": _empty_page,
    "search_mcp_server_versions": _empty_page,
    "search_mcp_access_endpoints": _empty_page,
    "get_mcp_server_versions_for_trace": _empty_list,
}

# Names that mark a method of AbstractStore as part of the GenAI half.
_GENAI_PREFIXES = (
    "trace", "span", "assessment", "issue", "dataset", "scorer", "scoring", "label_schema",
    "review_queue", "user_queue", "prompt", "session",
)
_GENAI_EXTRA = {"start_trace", "log_spans", "calculate_trace_filter_correlation", "archive_traces",
                "create_dataset", "delete_dataset", "upsert_dataset_records", "delete_dataset_records",
                "add_dataset_to_experiments", "remove_dataset_from_experiments", "link_traces_to_run",
                "unlink_traces_from_run", "link_prompts_to_trace", "get_online_trace_details"}


def _unsupported(name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotSupported(UNSUPPORTED_MESSAGE.format(name=name))

    method.__name__ = name
    return method


def _is_genai(name: str) -> bool:
    return name in _GENAI_EXTRA or any(p in name for p in _GENAI_PREFIXES)


def _unimplemented(func: Any) -> bool:
    """True when MLflow's base method only raises (it has no working default to keep)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return False
    return "NotImplementedError" in source or "NotImplementedException" in source


# Called by MLflow's server on SQL stores only (not part of AbstractStore): the legacy v2 trace API.
_SERVER_ONLY = {"deprecated_start_trace_v2", "deprecated_end_trace_v2"}


def unsupported_names() -> list[str]:
    """Every GenAI write of MLflow's store interface (this MLflow version): refused clearly."""
    names = {n for cls in store_interfaces()
             for n, f in vars(cls).items() if inspect.isfunction(f) and not n.startswith("_")}
    names |= {n for n, f in vars(AbstractStore).items()
              if inspect.isfunction(f) and not n.startswith("_") and _is_genai(n)}
    names = {n for n in names - set(EMPTY_READS) if _unimplemented(getattr(AbstractStore, n))}
    return sorted(names | _SERVER_ONLY)


MAX_DATASET_SUMMARIES = 1000  # MLflow's SQL store's cap


class GenAIMixin:
    """Placed before ``AbstractStore`` in the tracking store's bases so these win over its defaults."""

    state: Any  # the store's TrackingState
    # abstract in MLflow's AbstractStore: named here so type checkers see it implemented (the loop below
    # installs the same refusal for every other GenAI write)
    link_traces_to_run = _unsupported("link_traces_to_run")

    def _search_datasets(self, experiment_ids: list[str]) -> list[_DatasetSummary]:
        """Distinct datasets the experiments' runs logged as inputs (the UI's dataset filter).

        Not GenAI, but asked by the same pages: without it MLflow's server answers 404.
        """
        wanted = pa.array([str(e) for e in experiment_ids], pa.string())
        runs = self.state.runs().select(["run_id", "experiment_id"])
        runs = runs.filter(pc.is_in(runs.column("experiment_id"), value_set=wanted))
        inputs = self.state.inputs().table
        if runs.num_rows == 0 or inputs.num_rows == 0:
            return []
        inputs = inputs.filter(pc.equal(inputs.column("kind"), "dataset")).select(
            ["run_id", "name", "digest", "context"])
        joined = inputs.join(runs, "run_id", join_type="inner").select(["experiment_id", "name", "digest", "context"])
        distinct = joined.group_by(joined.column_names, use_threads=False).aggregate([])
        rows = distinct.sort_by([(c, "ascending") for c in distinct.column_names]).slice(0, MAX_DATASET_SUMMARIES)
        return [_DatasetSummary(experiment_id=r["experiment_id"], name=r["name"], digest=r["digest"],
                                context=r["context"]) for r in rows.to_pylist()]


for _name, _read in EMPTY_READS.items():
    setattr(GenAIMixin, _name, _read)
for _name in unsupported_names():
    setattr(GenAIMixin, _name, _unsupported(_name))
