"""Run the scoring server under uvicorn: resolve the model once, then one or more workers.

uvicorn handles SIGTERM/SIGINT gracefully: it stops accepting connections, lets in-flight
requests finish (up to ``graceful_timeout_s``), then runs the app's shutdown, which drains
the micro-batcher. Extra workers are spawned (not forked) by uvicorn's supervisor and load
the already-downloaded local copy of the model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from sparkml_ops.errors import BadInput, InvalidState
from sparkml_ops.models.resolve import resolve_model
from sparkml_ops.models.serving.settings import CONFIG_ENV, ServeConfig


def _uvicorn_options(config: ServeConfig) -> dict:
    import importlib.util

    return {
        "host": config.host,
        "port": config.port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "access_log": config.access_log,
        "log_level": config.log_level,
        "timeout_graceful_shutdown": config.graceful_timeout_s,
        "timeout_worker_healthcheck": 60,  # a worker loading a large model must not be taken for dead
        "lifespan": "on",
        "server_header": False,
    }


def _server_class():
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, but a graceful SIGTERM/SIGINT shutdown exits 0 instead of re-raising the signal."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return GracefulServer


def serve(config: ServeConfig, tracking_uri: str | None = None) -> None:
    """Resolve ``config.model_uri``, load it and serve until SIGTERM/SIGINT."""
    import mlflow
    import uvicorn

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # worker processes re-resolve with --follow
    source = resolve_model(config.model_uri)
    config.model_path, config.model_id, config.run_id = source.path, source.model_id, source.run_id
    config.model_name, config.model_version = source.registered_name, source.registered_version
    config.model_digest = source.digest
    if config.follow and source.registered_version is None:
        raise BadInput(f"--follow needs a registry URI (models:/<name>@<alias> or models:/<name>/latest); "
                       f"{config.model_uri!r} always names the same model")
    try:
        if config.workers == 1:
            from sparkml_ops.models.serving.app import build_app
            from sparkml_ops.models.serving.predictor import ServedModel

            model = ServedModel(source.path, fast_path=config.fast_path)
            print(f"sparkml-ops: serving {source.label}, fast path "
                  f"{'on' if model.fast else 'off: ' + model.fast_reason}, on http://{config.host}:{config.port}",
                  file=sys.stderr, flush=True)
            server = _server_class()(uvicorn.Config(build_app(model, config), **_uvicorn_options(config)))
            server.run()
            if not server.started:
                raise InvalidState(f"the server did not start on {config.host}:{config.port} (see the log above)")
        else:
            os.environ[CONFIG_ENV] = config.to_env()
            print(f"sparkml-ops: serving {source.label} with {config.workers} workers on "
                  f"http://{config.host}:{config.port}", file=sys.stderr, flush=True)
            uvicorn.run("sparkml_ops.models.serving.app:create_app", factory=True, workers=config.workers,
                        **_uvicorn_options(config))
    finally:
        _remove_download(source.path)


def _remove_download(path: str) -> None:
    """Delete the temporary copy :func:`resolve_model` downloaded (never a user's own directory)."""
    temp = Path(tempfile.gettempdir()).resolve()
    for parent in Path(path).resolve().parents:
        if parent.parent == temp and parent.name.startswith("sparkml-ops-model-"):
            shutil.rmtree(parent, ignore_errors=True)
            return
