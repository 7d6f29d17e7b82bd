"""Serving options: one dataclass, passed to uvicorn worker processes through one env var.

uvicorn starts extra workers with ``spawn`` and an import string, so the options cannot be
handed over as objects; they travel as JSON in :data:`CONFIG_ENV`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from sparkml_ops.errors import BadInput

CONFIG_ENV = "SPARKML_OPS_SERVE_CONFIG"

# Environment defaults for the tuning knobs (a CLI flag wins over these).
ENV_DEFAULTS = {
    "max_batch_rows": "SPARKML_OPS_SERVE_MAX_BATCH_ROWS",
    "max_wait_ms": "SPARKML_OPS_SERVE_MAX_WAIT_MS",
    "max_body_bytes": "SPARKML_OPS_SERVE_MAX_BODY_BYTES",
    "graceful_timeout_s": "SPARKML_OPS_SERVE_GRACEFUL_TIMEOUT_S",
}


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
    max_batch_rows: int = 512
    max_wait_ms: float = 0.0
    max_body_bytes: int = 64 * 1024 * 1024
    graceful_timeout_s: int = 30
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


def env_default(name: str, fallback):
    """The environment's value for tuning knob ``name`` (parsed like ``fallback``), else ``fallback``."""
    raw = os.environ.get(ENV_DEFAULTS[name])
    if raw is None or raw == "":
        return fallback
    try:
        return type(fallback)(float(raw)) if isinstance(fallback, int) else type(fallback)(raw)
    except ValueError as exc:
        raise BadInput(f"${ENV_DEFAULTS[name]}={raw!r} is not a number") from exc
