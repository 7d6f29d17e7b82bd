"""A running project: wait, status, cancel; the tracking record is finalised exactly once.

The job's process runs in its own session (process group), so ``cancel()`` (or Ctrl-C in
``wait()``) stops spark-submit, its driver and every Python worker it started, and the Spark
application with them. After the process ends, the driver log and the Spark application id
are logged and the run's status is set: exit code 0 -> FINISHED, other -> FAILED,
cancelled -> KILLED. The job's own writes are flushed by its process at exit; writes left in
the write-ahead log of a killed job are replayed before the status is set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlflow.projects.submitted_run import SubmittedRun as MlflowSubmittedRun

from sparkml_ops.projects import tags as T


class SubmittedRun(MlflowSubmittedRun):
    """Handle on one project run (also what the MLflow ``spark-submit`` backend returns)."""

    def __init__(self, run_id: str, process: subprocess.Popen, client, *, workdir: Path, tracking_uri: str,
                 stream_output: bool = True, keep_workdir: bool = False, spark: bool = True) -> None:
        self._run_id = run_id
        self._process = process
        self._client = client
        self._workdir = workdir
        self._tracking_uri = tracking_uri
        self._keep = keep_workdir
        self._spark = spark
        self._log_path = workdir / "driver.log"
        self._final: str | None = None
        self._cancelled = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._pump = threading.Thread(target=self._copy_output, args=(stream_output,), daemon=True)
        self._pump.start()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"sparkml_ops-run-{run_id[:8]}")
        self._watcher.start()

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def driver_log(self) -> Path:
        return self._log_path

    # -- MLflow's SubmittedRun interface ------------------------------------------------

    def wait(self) -> bool:
        """Block until the job ends and the run is finalised; True when it FINISHED. Ctrl-C cancels."""
        try:
            while not self._done.wait(0.2):
                pass
        except KeyboardInterrupt:
            print(f"sparkml_ops: cancelling run {self._run_id}", file=sys.stderr)
            self.cancel()
            raise
        return self._final == "FINISHED"

    def get_status(self) -> str:
        return self._final or "RUNNING"  # still RUNNING while the ended job is being finalised

    def cancel(self, grace_seconds: float = 10.0) -> None:
        """Stop the job and everything it started; the run ends KILLED."""
        with self._lock:
            if self._final is not None or self._process.poll() is not None and self._done.is_set():
                return
            self._cancelled = True
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while self._process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal(signal.SIGKILL)
        self._process.wait()
        self._kill_strays()
        self._done.wait(60)

    # -- internals ----------------------------------------------------------------------

    def _kill_strays(self) -> None:
        """SIGKILL processes of this job outside its process group (pyspark's daemon calls setsid).

        They are found by the job's unique ``SPARKML_OPS_APP_INFO`` value in their environment
        (Linux ``/proc``); elsewhere they exit on their own when the JVM's pipe closes.
        """
        marker = f"SPARKML_OPS_APP_INFO={self._workdir / 'app.json'}".encode()
        proc = Path("/proc")
        if not proc.is_dir():
            return
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _copy_output(self, echo: bool) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        with open(self._log_path, "ab") as log:
            for chunk in iter(stdout.readline, b""):
                log.write(chunk)
                log.flush()
                if echo:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()

    def _watch(self) -> None:
        code = self._process.wait()
        self._pump.join(timeout=30)
        if self._cancelled:
            self._signal(signal.SIGKILL)  # nothing of a cancelled job survives it
            self._kill_strays()
        status = "KILLED" if self._cancelled else ("FINISHED" if code == 0 else "FAILED")
        try:
            self._finalise(status, code)
        except Exception as exc:  # noqa: BLE001 - the status must still be reported
            print(f"sparkml_ops: finalising run {self._run_id} failed: {exc}", file=sys.stderr)
            self._final = status
        finally:
            self._done.set()

    def _replay_job_wal(self) -> None:
        """Commit what a killed job acknowledged but had not flushed (its write-ahead log)."""
        if not self._tracking_uri.startswith("delta:"):
            return
        from sparkml_ops import config
        from sparkml_ops.lake import Lake, parse_root

        try:
            Lake.open(parse_root(self._tracking_uri, config.resolve("storage_options"))).recover()
        except Exception as exc:  # noqa: BLE001 - replay also happens on the next open
            print(f"sparkml_ops: write-ahead-log replay after run {self._run_id}: {exc}", file=sys.stderr)

    def _finalise(self, status: str, code: int) -> None:
        client = self._client
        self._replay_job_wal()
        app_file = self._workdir / "app.json"
        tags = {T.EXIT_CODE: str(code)}
        if app_file.is_file():
            try:
                info = json.loads(app_file.read_text())
                tags[T.APP_ID] = str(info.get("app_id"))
                if info.get("ui"):
                    tags[T.SPARK_UI] = str(info["ui"])
            except (OSError, ValueError):
                pass
        for key, value in tags.items():
            client.set_tag(self._run_id, key, value)
        if self._log_path.is_file():
            client.log_artifact(self._run_id, str(self._log_path))
        current = client.get_run(self._run_id).info.status
        # A job that ended its own run as FAILED/KILLED keeps that; otherwise the exit code decides.
        if status == "FINISHED" and current in ("FAILED", "KILLED"):
            status = current
        client.set_terminated(self._run_id, status)
        store = getattr(client, "_tracking_client", None)
        flush = getattr(getattr(store, "store", None), "flush", None)
        if callable(flush):
            flush()
        self._final = status
        if not self._keep:
            shutil.rmtree(self._workdir, ignore_errors=True)
