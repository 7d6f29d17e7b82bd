"""The parts of MLflow's registry interface this store does not serve: prompts and webhooks.

Each raises :class:`NotSupported` naming the call. Listing webhooks answers "none", so
MLflow's server, which looks for webhooks to notify after every registry change, works.
"""

from __future__ import annotations

from typing import Any

from mlflow.store.entities.paged_list import PagedList

from sparkml_ops.errors import NotSupported

_PROMPT_METHODS = (
    "create_prompt", "search_prompts", "delete_prompt", "set_prompt_tag", "delete_prompt_tag", "get_prompt",
    "create_prompt_version", "get_prompt_version", "delete_prompt_version", "get_prompt_version_by_alias",
    "set_prompt_alias", "delete_prompt_alias", "search_prompt_versions", "link_prompts_to_trace",
    "set_prompt_version_tag", "delete_prompt_version_tag", "link_prompt_version_to_model",
    "link_prompt_version_to_run",
)
_WEBHOOK_METHODS = ("create_webhook", "get_webhook", "update_webhook", "delete_webhook", "test_webhook")


def _unsupported(name: str, what: str):
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotSupported(
            f"'{name}' ({what}) is not supported by the sparkml_ops Delta model registry store; "
            "use an MLflow server with a SQL backend for it."
        )

    method.__name__ = name
    return method


class UnsupportedRegistryMixin:
    """Placed before ``AbstractStore`` in the bases so these win over its defaults."""

    def list_webhooks(self, max_results: int | None = None, page_token: str | None = None) -> PagedList:
        return PagedList([], None)

    def list_webhooks_by_event(self, event: Any, max_results: int | None = None,
                               page_token: str | None = None) -> PagedList:
        return PagedList([], None)


for _name in _PROMPT_METHODS:
    setattr(UnsupportedRegistryMixin, _name, _unsupported(_name, "MLflow prompt registry"))
for _name in _WEBHOOK_METHODS:
    setattr(UnsupportedRegistryMixin, _name, _unsupported(_name, "registry webhooks"))
