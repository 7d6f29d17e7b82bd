"""REST scoring server speaking MLflow's protocol, with a numpy fast path and micro-batching.

``sparkml-ops models serve -m URI`` (or :func:`serve`) runs it; see :mod:`.app` for the routes.
"""

from __future__ import annotations

from sparkml_ops.models.serving.settings import ServeConfig


def serve(config: ServeConfig, tracking_uri: str | None = None) -> None:
    """Serve ``config.model_uri`` until SIGTERM/SIGINT (see :func:`.server.serve`)."""
    from sparkml_ops.models.serving.server import serve as _serve

    _serve(config, tracking_uri)


__all__ = ["ServeConfig", "serve"]
