"""``--auth``: MLflow's basic-auth app (users, per-experiment permissions), its data under the root.

Layout under a local root ``R``: ``R/_auth/users.db`` (MLflow's auth database, SQLite),
``R/_auth/basic_auth.ini`` (its configuration) and ``R/_auth/secret_key`` (the CSRF key all
workers share), all readable by the owner only. The first admin's password comes from
``$SPARKML_OPS_ADMIN_PASSWORD`` or a file (``--admin-password-file``), never a command-line
flag (flags show in ``ps``); it is needed only until the admin exists.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from sparkml_ops import config
from sparkml_ops.errors import BadInput
from sparkml_ops.lake import RootLocation
from sparkml_ops.server.settings import ADMIN_PASSWORD_ENV, ServerSettings

AUTH_DIR = "_auth"
ADMIN_USERNAME = "admin"
DEFAULT_PERMISSION = "READ"  # signed-in users read everything, write only where granted


def auth_dir(location: RootLocation) -> Path:
    if not location.is_local:
        raise BadInput(f"--auth needs a local root for its user database; {location.uri!r} is not local")
    return Path(location.uri) / AUTH_DIR


def prepare_auth(settings: ServerSettings, location: RootLocation) -> None:
    """Write the auth configuration and export what MLflow's auth app reads; run before importing it."""
    directory = auth_dir(location)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ini = directory / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = sqlite:///{directory / 'users.db'}\n"
        f"admin_username = {ADMIN_USERNAME}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    os.chmod(ini, 0o600)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    os.environ["MLFLOW_AUTH_ADMIN_USERNAME"] = ADMIN_USERNAME
    if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"] = _secret_key(directory / "secret_key")
    password = admin_password(settings)
    if password is not None:
        os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    elif not (directory / "users.db").exists():
        raise BadInput(
            f"--auth on a root without users needs the first admin's password: set ${ADMIN_PASSWORD_ENV} "
            "or pass --admin-password-file FILE (never on the command line)"
        )


def bootstrap(settings: ServerSettings, location: RootLocation) -> None:
    """Create the user database and the admin once, in the parent, before workers start."""
    from sparkml_ops.lake import Lake

    Lake.open(location).close()  # a new root is created before _auth/ lands in its directory
    prepare_auth(settings, location)
    from mlflow.server.auth import bootstrap_admin_user

    bootstrap_admin_user()
    os.environ["_MLFLOW_AUTH_ADMIN_BOOTSTRAPPED"] = "true"


def admin_password(settings: ServerSettings) -> str | None:
    """The admin password from the file named in the settings, else the environment, else None."""
    if settings.admin_password_file:
        path = Path(settings.admin_password_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"--admin-password-file {str(path)!r} cannot be read: {exc}") from exc
        if not text:
            raise BadInput(f"--admin-password-file {str(path)!r} is empty")
        return text
    return config.resolve("admin_password") or None


def create_auth_app(flask_app: Any, settings: ServerSettings, location: RootLocation) -> Any:
    """MLflow's basic-auth app around ``flask_app`` (a FastAPI app with its permission middleware)."""
    prepare_auth(settings, location)
    from mlflow.server.auth import create_app

    return create_app(flask_app)


def _secret_key(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: everyone uses that one
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key
