"""Starting the server: ``sparkml-ops server`` (shared) and ``sparkml-ops ui`` (one person).

Workers are uvicorn's (started with ``spawn``: delta-rs does not survive ``fork``); each
builds its own app from the settings exported in :data:`SETTINGS_ENV`. Several workers
writing one root are several writers of one lake: the lake's group commit and conflict
retries keep every acknowledged write.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import webbrowser
from typing import TextIO

from sparkml_ops.server.settings import SETTINGS_ENV, ServerSettings

FACTORY = "sparkml_ops.server.app:app_from_env"


def serve(settings: ServerSettings) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    from sparkml_ops.lake import parse_root

    os.environ[SETTINGS_ENV] = settings.to_env()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if settings.auth:
        from sparkml_ops.server.auth import bootstrap

        bootstrap(settings, parse_root(settings.tracking_uri))
    if settings.workers == 1:
        from sparkml_ops.server.app import create_app

        app = create_app(settings)  # in-process: one process, no re-import
        uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning",
                    timeout_keep_alive=30)
        return
    # info: the supervisor says when a worker died and was replaced (its warning level hides that)
    uvicorn.run(FACTORY, factory=True, host=settings.host, port=settings.port, workers=settings.workers,
                access_log=False, log_level="info", timeout_keep_alive=30, timeout_worker_healthcheck=120)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ui(tracking_uri: str, *, open_browser: bool = True, out: TextIO = sys.stdout) -> None:
    """One person's UI: loopback only, a free port, the URL printed and opened when a browser exists."""
    settings = ServerSettings(tracking_uri=tracking_uri, host="127.0.0.1", port=free_port(), workers=1)
    print(f"sparkml-ops UI for {tracking_uri} at {settings.url}  (Ctrl+C to stop)", file=out, flush=True)
    if open_browser and _has_browser():
        threading.Timer(1.5, webbrowser.open, args=(settings.url,)).start()
    serve(settings)


def _has_browser() -> bool:
    """A graphical session or a configured browser: never a text browser inside a terminal."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform == "darwin" or os.name == "nt":
        return True
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.get().__class__.__name__ not in ("GenericBrowser",)
    except webbrowser.Error:
        return False
