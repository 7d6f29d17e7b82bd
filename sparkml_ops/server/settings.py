"""What one tracking server serves and how: validated once, handed to every worker.

Uvicorn starts each worker with ``spawn`` (delta-rs does not survive ``fork``), so the
settings travel to workers as one JSON environment variable and the app factory reads
them back; nothing is read at import time.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass

from sparkml_ops.errors import BadInput

SETTINGS_ENV = "SPARKML_OPS_SERVER_SETTINGS"
ADMIN_PASSWORD_ENV = "SPARKML_OPS_ADMIN_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # REST bodies; artifact uploads stream and are exempt


@dataclass(frozen=True)
class ServerSettings:
    """One server over one root.

    ``tracking_uri`` is the ``delta:`` URI of the root; ``auth`` turns on MLflow's basic-auth
    app with its user database under the root; ``admin_password_file`` names a file holding
    the first admin's password (else :data:`ADMIN_PASSWORD_ENV`); ``insecure`` allows a
    non-loopback bind without authentication.
    """

    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    auth: bool = False
    insecure: bool = False
    admin_password_file: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise BadInput(f"--port {self.port!r} must be an integer in 0..65535")
        if not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise BadInput(f"--workers {self.workers!r} must be an integer in 1..64")
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1024:
            raise BadInput(f"max_body_bytes {self.max_body_bytes!r} must be an integer >= 1024")
        if not self.tracking_uri.startswith("delta:"):
            raise BadInput(f"tracking URI {self.tracking_uri!r} must be a 'delta:' URI")
        if not self.auth and not self.insecure and not is_loopback(self.host):
            raise BadInput(
                f"--host {self.host!r} is not a loopback address: anyone who reaches it could read and "
                "change every experiment. Add --auth (users and permissions), or --insecure to serve "
                "without authentication on purpose."
            )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings the parent process exported to this worker."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise BadInput(f"${SETTINGS_ENV} is not set: start workers with 'sparkml-ops server'")
        return cls(**json.loads(raw))


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
