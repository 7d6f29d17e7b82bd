"""Serving options: one dataclass, passed to uvicorn worker processes through one env var.

The tuning knobs' defaults and environment variables are settings of :mod:`sparkml_ops.config`
(section ``serving``); ``sparkml-ops models serve`` resolves them.

uvicorn starts extra workers with ``spawn`` and an import string, so the options cannot be
handed over as objects; they travel as JSON in :data:`CONFIG_ENV`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from sparkml_ops.config import SETTINGS
from sparkml_ops.errors import BadInput

CONFIG_ENV = "SPARKML_OPS_SERVE_CONFIG"

@dataclass
class ServeConfig:
    """How to serve one model.

    ``model_path`` is the local copy every worker loads; ``model_uri`` is what the user
    asked for (reported by ``/metadata``).
    """

    model_uri: str
    model_path: str = ""
    model_id: str | None = None
    run_id: str | None = None
    model_name: str | None = None  # registered model name and version, when served from the registry
    model_version: int | None = None
    model_digest: str | None = None
    follow: bool = False  # re-resolve model_uri (models:/name@alias) and swap to a new version
    follow_interval_s: float = 5.0
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    max_batch_rows: int = SETTINGS["serve_max_batch_rows"].default
    max_wait_ms: float = SETTINGS["serve_max_wait_ms"].default
    max_body_bytes: int = SETTINGS["serve_max_body_bytes"].default
    graceful_timeout_s: int = SETTINGS["serve_graceful_timeout_s"].default
    fast_path: bool = True
    access_log: bool = False
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("port", "workers", "max_batch_rows", "max_body_bytes", "graceful_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadInput(f"serving option {name}={value!r} must be an integer")
        if not 0 <= self.port <= 65535:
            raise BadInput(f"port {self.port} must be between 0 and 65535")
        if self.workers < 1:
            raise BadInput(f"workers={self.workers} must be at least 1")
        if self.max_batch_rows < 1:
            raise BadInput(f"max_batch_rows={self.max_batch_rows} must be at least 1")
        if self.max_body_bytes < 1:
            raise BadInput(f"max_body_bytes={self.max_body_bytes} must be at least 1")
        if not 0 <= float(self.max_wait_ms) <= 10_000:
            raise BadInput(f"max_wait_ms={self.max_wait_ms} must be between 0 and 10000")
        if isinstance(self.follow_interval_s, bool) or not isinstance(self.follow_interval_s, (int, float)) \
                or not 0.1 <= self.follow_interval_s <= 86_400:
            raise BadInput(f"follow_interval_s={self.follow_interval_s!r} must be a number of seconds "
                           "between 0.1 and 86400")
        if self.graceful_timeout_s < 0:
            raise BadInput(f"graceful_timeout_s={self.graceful_timeout_s} must not be negative")

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise BadInput(f"${CONFIG_ENV} is not set: start workers with `sparkml-ops models serve`")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})

