"""MLflow entry-point target (``mlflow.model_registry_store``: ``delta``), importable without MLflow.

Like ``tracking/plugin.py``: MLflow loads entry points while ``mlflow`` is being imported, so
this builder imports the store on first use only.
"""

from __future__ import annotations

from typing import Any


def registry_store(store_uri: str | None = None, tracking_uri: str | None = None) -> Any:
    from sparkml_ops.registry.store import DeltaRegistryStore

    return DeltaRegistryStore(store_uri, tracking_uri)
