"""App factory: MLflow's own tracking server and web UI, wired to one Delta root.

Nothing is rebuilt: the REST handlers, the artifact proxy routes and the React UI are
MLflow's (``mlflow.server``). This module hands them our stores instead of letting them
build stores from environment variables, points their artifact proxy at the root's Delta
artifact tables, and adds a request-body limit. MLflow keeps its stores in module globals
of ``mlflow.server.handlers``; :func:`create_app` fills them once per worker process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from sparkml_ops.server.settings import ServerSettings

_logger = logging.getLogger(__name__)


def create_app(settings: ServerSettings) -> Any:
    """An ASGI app serving MLflow's REST API and UI over ``settings.tracking_uri``.

    Call once per process (MLflow's handlers and Flask app are process-wide).
    """
    _export_server_env(settings)
    import mlflow
    from mlflow.server import app as flask_app
    from mlflow.server import handlers
    from mlflow.server.constants import ARTIFACT_ROOT_ENV_VAR, ARTIFACTS_DESTINATION_ENV_VAR

    from sparkml_ops.server.limits import BodyLimit
    from sparkml_ops.server.proxied import ProxiedArtifactsStore
    from sparkml_ops.tracking.artifact_repo import DeltaArtifactRepository
    from sparkml_ops.tracking.artifact_uri import default_artifact_root
    from sparkml_ops.tracking.store import DeltaTrackingStore

    # MLflow's server sets these too: code inside the server that opens a default client
    # (the registry resolving models:/ sources, the assistant) must reach this root.
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    store = DeltaTrackingStore(settings.tracking_uri)
    threading.Thread(target=_warm_views, args=(store.state,), name="sparkml-ops-warm", daemon=True).start()
    destination = default_artifact_root(store.location)
    # MLflow declares these module globals as None and fills them lazily; we fill them first
    handlers._tracking_store = ProxiedArtifactsStore(store, destination)  # type: ignore[assignment]
    handlers._artifact_repo = DeltaArtifactRepository(destination)  # type: ignore[assignment]
    handlers._model_registry_store = _registry_store(settings.tracking_uri)
    os.environ[ARTIFACTS_DESTINATION_ENV_VAR] = destination
    os.environ[ARTIFACT_ROOT_ENV_VAR] = destination  # trusted by MLflow's artifact host policy

    if settings.auth:
        from sparkml_ops.server.auth import create_auth_app

        app = create_auth_app(flask_app, settings, store.location)
    else:
        from mlflow.server.fastapi_app import create_fastapi_app

        from sparkml_ops.server.fast_log_batch import install

        app = create_fastapi_app(flask_app)
        install(app, flask_app)
    return BodyLimit(app, settings.max_body_bytes)


def _warm_views(state: Any) -> None:
    """Build the derived views the runs page reads, before its first request does.

    Each worker process keeps its own views; built on first use, a 10,000-run experiment's
    first page on each of N workers waited for them (a second or more each).
    """
    began = time.perf_counter()
    try:
        for view in (state.experiments, state.runs, state.tags, state.params, state.latest_metrics,
                     state.inputs, state.outputs, state.logged_models):
            view()
    except Exception as exc:  # noqa: BLE001 - a warm-up only: the request that needs the view builds it
        _logger.warning("Warming the tracking views failed (requests build them instead): %s", exc)
        return
    _logger.info("Tracking views warm in %.2f s", time.perf_counter() - began)


def app_from_env() -> Any:
    """Uvicorn's factory in each worker: the settings the parent exported."""
    return create_app(ServerSettings.from_env())


def _registry_store(tracking_uri: str) -> Any:
    """The ``delta`` model registry on the same root, or None when it is not installed."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.handlers import _model_registry_store_registry

    try:
        # the tracking URI too: else the registry resolves models:/ sources against MLflow's default store
        return _model_registry_store_registry.get_store(tracking_uri, tracking_uri)
    except (MlflowException, ImportError) as exc:
        _logger.warning("No model registry for %s (%s): the UI's model pages will be empty.", tracking_uri, exc)
        return None


def _export_server_env(settings: ServerSettings) -> None:
    """What MLflow's handlers read from the environment at request time (not at import)."""
    from mlflow.server.constants import (
        ARTIFACTS_ONLY_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )

    os.environ[BACKEND_STORE_URI_ENV_VAR] = settings.tracking_uri
    os.environ[SERVE_ARTIFACTS_ENV_VAR] = "true"
    os.environ.pop(ARTIFACTS_ONLY_ENV_VAR, None)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network calls from workers
    os.environ.setdefault("_MLFLOW_SGI_NAME", "uvicorn")
