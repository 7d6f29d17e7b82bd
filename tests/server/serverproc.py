"""Real server processes on 127.0.0.1 for the tests: ours over a Delta root, MLflow's over SQLite."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

READY_TIMEOUT_S = 600  # a loaded 2-core machine (load 60 seen) imports MLflow's server slowly


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore",
                "MLFLOW_ALLOW_FILE_STORE": "true"})
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path, env: dict[str, str] | None = None,
            ready_path: str = "/health") -> Iterator[Server]:
    """Start ``command`` (a server listening on ``port``), wait until it answers, stop it after."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env(env),
                                   start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_text()[-4000:]}")
            try:
                if requests.get(server.url + ready_path, timeout=5).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {READY_TIMEOUT_S}s:\n{server.log_text()[-4000:]}")
            time.sleep(0.5)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def sparkml_server(root: Path, log: Path, *, workers: int = 1, auth: bool = False,
                   env: dict[str, str] | None = None, extra_args: list[str] | None = None
                   ) -> contextlib.AbstractContextManager[Server]:
    """``sparkml-ops server`` over ``root`` (the real command, in its own process)."""
    port = free_port()
    command = [sys.executable, "-m", "sparkml_ops.cli", "server", "--root", str(root), "--port", str(port),
               "--workers", str(workers), *(["--auth"] if auth else []), *(extra_args or [])]
    return running(command, port, log, env)


def mlflow_sqlite_server(directory: Path, log: Path, *, workers: int = 1) -> contextlib.AbstractContextManager[Server]:
    """MLflow's own ``mlflow server`` on SQLite with proxied artifacts: the reference."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
               "--artifacts-destination", str(directory / "artifacts"), "--serve-artifacts",
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return running(command, port, log)
