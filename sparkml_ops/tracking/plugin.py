"""MLflow entry-point targets, importable without importing MLflow or the store.

MLflow loads entry points while ``mlflow`` itself is being imported; if the target module
imported ``mlflow.exceptions`` at import time (as the store does), a program that imports
``sparkml_ops`` before ``mlflow`` would hit a circular import and lose the ``delta`` scheme.
So the entry points name these small builders, which import the real classes on first use.
"""

from __future__ import annotations

from typing import Any


def tracking_store(store_uri: str | None = None, artifact_uri: str | None = None) -> Any:
    from sparkml_ops.tracking.store import DeltaTrackingStore

    return DeltaTrackingStore(store_uri, artifact_uri)
