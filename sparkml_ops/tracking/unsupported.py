"""The GenAI half of MLflow's store interface, which a Delta tracking store does not serve.

Each method raises :class:`NotSupported` naming the call, instead of MLflow's bare
``NotImplementedError``, so users learn at once which store to use for it.
"""

from __future__ import annotations

from typing import Any

from sparkml_ops.errors import NotSupported

_GENAI_METHODS = (
    "start_trace", "delete_traces", "get_trace_info", "get_trace", "batch_get_traces",
    "batch_get_trace_infos", "archive_traces", "search_traces", "find_completed_sessions",
    "query_trace_metrics", "set_trace_tag", "delete_trace_tag", "get_assessment", "create_assessment",
    "update_assessment", "delete_assessment", "create_issue", "get_issue", "update_issue",
    "search_issues", "log_spans", "create_dataset", "get_dataset", "delete_dataset", "search_datasets",
    "upsert_dataset_records", "delete_dataset_records", "set_dataset_tags", "delete_dataset_tag",
    "get_dataset_experiment_ids", "add_dataset_to_experiments", "remove_dataset_from_experiments",
    "link_traces_to_run", "unlink_traces_from_run", "link_prompts_to_trace",
    "calculate_trace_filter_correlation", "register_scorer", "list_scorers",
    "list_scorers_across_experiments", "get_scorer", "list_scorer_versions", "delete_scorer",
    "upsert_online_scoring_config", "get_online_scoring_configs", "get_active_online_scorers",
    "create_label_schema", "get_label_schema", "get_label_schema_by_name", "list_label_schemas",
    "update_label_schema", "delete_label_schema", "create_review_queue", "get_or_create_user_queue",
    "get_review_queue", "get_review_queue_by_name", "list_review_queues", "update_review_queue",
    "delete_review_queue", "add_items_to_review_queue", "remove_items_from_review_queue",
    "list_review_queue_items", "set_review_queue_item_status",
)


def _unsupported(name: str):
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotSupported(
            f"'{name}' (MLflow GenAI: traces, assessments, scorers, evaluation datasets, review "
            "queues) is not supported by the sparkml_ops Delta tracking store; use an MLflow "
            "tracking server with a SQL backend for GenAI features."
        )

    method.__name__ = name
    return method


class UnsupportedGenAIMixin:
    """Placed before ``AbstractStore`` in the bases so these win over its defaults."""


for _name in _GENAI_METHODS:
    setattr(UnsupportedGenAIMixin, _name, _unsupported(_name))
