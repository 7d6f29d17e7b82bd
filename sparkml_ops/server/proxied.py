"""The tracking store as HTTP clients see it: this root's artifacts under ``mlflow-artifacts:``.

The tables store ``delta-artifacts:<root>/artifacts/<path>`` (what Spark jobs and local
clients open directly). A client on another machine cannot open that, so the server shows
every such URI as ``mlflow-artifacts:/<path>`` and serves it from the artifacts destination
``delta-artifacts:<root>/artifacts`` — the same bytes under the same path. Nothing is
rewritten in storage; only entities leaving the store are translated.
"""

from __future__ import annotations

from typing import Any

from mlflow.entities import Experiment, Run, RunInfo
from mlflow.entities.logged_model import LoggedModel

PROXY_SCHEME = "mlflow-artifacts:"


class ProxiedArtifactsStore:
    """Delegates to ``store``; URIs under ``destination`` in returned entities become proxied ones."""

    def __init__(self, store: Any, destination: str) -> None:
        self._store = store
        self._prefix = destination.rstrip("/") + "/"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr) or name.startswith("__"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._translate(attr(*args, **kwargs))

        call.__name__ = name
        return call

    def proxied(self, uri: str | None) -> str | None:
        """``uri`` as HTTP clients address it (unchanged when outside this root's artifacts)."""
        if isinstance(uri, str) and uri.startswith(self._prefix):
            return PROXY_SCHEME + "/" + uri[len(self._prefix):]
        if isinstance(uri, str) and uri == self._prefix.rstrip("/"):
            return PROXY_SCHEME + "/"
        return uri

    def _translate(self, value: Any) -> Any:
        if isinstance(value, Run):
            self._translate(value.info)
        elif isinstance(value, RunInfo):
            value._artifact_uri = self.proxied(value._artifact_uri)
        elif isinstance(value, (Experiment, LoggedModel)):
            value._artifact_location = self.proxied(value._artifact_location) or value._artifact_location
        elif isinstance(value, list | tuple):  # PagedList is a list; (runs, token) tuples
            for item in value:
                self._translate(item)
        return value
