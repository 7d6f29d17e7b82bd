"""The notebook session: one per kernel, tying cell capture to MLflow runs.

Activated by ``%load_ext sparkml_ops`` or, lazily, by MLflow loading our run-context provider
inside an IPython kernel. It sets the notebook defaults (embedded root, the notebook's own
experiment, autologging), answers the provider's ``tags()``, and after every cell logs the
snapshot to runs that ended in it; a cell that raised ends the active run as FAILED.
Nothing here raises into the user's cell: problems become :class:`NotebookWarning`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from sparkml_ops import config
from sparkml_ops.notebook import spark_env
from sparkml_ops.notebook.capture import CellRecord, CellRecorder
from sparkml_ops.notebook.document import Snapshot, take_snapshot
from sparkml_ops.notebook.source import NotebookPath, NotebookWarning, find_notebook_path, spark_tags, static_tags

KERNEL_SESSION_TAG = "sparkml_ops.notebook.kernel_session"
IPYNB_ARTIFACT = "notebook/notebook.ipynb"
HTML_ARTIFACT = "notebook/notebook.html"

_active: NotebookSession | None = None


def current() -> NotebookSession | None:
    """The kernel's notebook session, if one was activated."""
    return _active


def activate(shell: Any, *, mlflow_ready: bool) -> NotebookSession:
    """The kernel's notebook session, created and installed on first call.

    ``mlflow_ready`` is False while ``mlflow`` is still being imported (the entry-point path):
    steps that call into mlflow then wait for the end of the current cell.
    """
    global _active
    if _active is None:
        _active = NotebookSession(shell)
        _active.install()
    if mlflow_ready:
        _active.finish_setup()
    return _active


def deactivate() -> None:
    """Detach the session from the kernel (``%unload_ext sparkml_ops``)."""
    global _active
    if _active is not None:
        _active.uninstall()
        _active = None


class NotebookSession:
    """Defaults, tags and snapshots for the notebook running in ``shell``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.token = uuid.uuid4().hex
        self.notebook: NotebookPath = find_notebook_path(getattr(shell, "user_ns", None))
        self.recorder = CellRecorder(shell)
        self.autolog = bool(config.resolve("notebook_autolog"))
        self.max_bytes = int(config.resolve("notebook_snapshot_max_bytes"))
        self._static: dict[str, str] | None = None
        self._setup_done = False
        self._autolog_applied: bool | None = None
        self._runs_created = 0
        self._cell_started_ms = 0
        self._open_runs: set[str] = set()
        self._last_before: str | None = None
        self.experiment_name: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def install(self) -> None:
        self._apply_env_defaults()
        spark_env.refresh(self)  # a Spark session may start later in this very cell
        self.recorder.install()
        self.shell.events.register("pre_run_cell", self._pre_cell)
        self.recorder.after_cell.append(self._after_cell)
        from sparkml_ops.notebook import display

        display.register(self.shell)
        from sparkml_ops.notebook.magics import sparkml_ops_magic

        self.shell.register_magic_function(sparkml_ops_magic, magic_kind="line", magic_name="sparkml_ops")
        if self.notebook.path is None:
            warnings.warn("the notebook's path cannot be found (no JPY_SESSION_NAME, __vsc_ipynb_file__ or "
                          "SPARKML_OPS_NOTEBOOK_PATH): runs are tagged mlflow.source.name='unknown' and go to "
                          "the default experiment", NotebookWarning, stacklevel=2)

    def uninstall(self) -> None:
        try:
            self.shell.events.unregister("pre_run_cell", self._pre_cell)
        except ValueError:
            pass
        self.recorder.uninstall()
        from sparkml_ops.notebook import display

        display.unregister(self.shell)

    def finish_setup(self) -> None:
        """The steps that call into mlflow: autologging and the root check."""
        if self._setup_done:
            return
        self._setup_done = True
        self.set_autolog(self.autolog)
        self._check_root()

    def _apply_env_defaults(self) -> None:
        """No tracking URI configured → the embedded root; no experiment → the notebook's own.

        Through MLflow's environment variables, so explicit ``set_tracking_uri`` /
        ``set_experiment`` calls win, and Spark executors and subprocesses inherit the same choice.
        """
        utils = sys.modules.get("mlflow.tracking._tracking_service.utils")
        explicit_uri = utils is not None and getattr(utils, "_tracking_uri", None)
        if not explicit_uri and not os.environ.get("MLFLOW_TRACKING_URI"):
            os.environ["MLFLOW_TRACKING_URI"] = config.tracking_uri()
        has_experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID")
        if self.notebook.path and not has_experiment:
            os.environ["MLFLOW_EXPERIMENT_NAME"] = self.notebook.path
            self.experiment_name = self.notebook.path

    def _check_root(self) -> None:
        """Warn (once, at set-up) when the local root cannot be written: runs would fail to log."""
        import mlflow

        uri = mlflow.get_tracking_uri()
        path = uri.removeprefix("delta:")
        if path == uri or "://" in path:  # not ours, or an object store
            return
        probe = Path(path).expanduser()
        while not probe.is_dir() and probe.parent != probe:
            probe = probe.parent
        try:
            with tempfile.TemporaryFile(dir=probe):
                pass
        except OSError as exc:
            warnings.warn(f"the tracking root {path!r} is not writable ({probe}: {exc.strerror or exc}): runs "
                          "cannot be logged there; set SPARKML_OPS_ROOT or call "
                          "mlflow.set_tracking_uri('delta:/writable/dir')",
                          NotebookWarning, stacklevel=2)

    def set_autolog(self, enabled: bool) -> None:
        """``mlflow.autolog()`` for the installed libraries (Spark's datasource autolog needs a JVM jar: left out)."""
        self.autolog = enabled
        if self._autolog_applied is enabled:
            return
        import mlflow

        try:
            if enabled:
                mlflow.autolog(exclude_flavors=["spark"], silent=True)
            elif self._autolog_applied:
                mlflow.autolog(disable=True, exclude_flavors=["spark"], silent=True)
            self._autolog_applied = enabled
        except Exception as exc:  # an integration's patching failed: the notebook still works
            warnings.warn(f"mlflow.autolog could not be {'enabled' if enabled else 'disabled'}: {exc}",
                          NotebookWarning, stacklevel=2)

    # -- tags ----------------------------------------------------------------------------------

    def static_tags(self) -> dict[str, str]:
        if self._static is None:
            self._static = static_tags(self.notebook)
        return self._static

    def tags(self) -> dict[str, str]:
        """Tags for a run being created now (called by the run-context provider)."""
        self._runs_created += 1
        tags = dict(self.static_tags())
        tags.update(spark_tags())
        tags[KERNEL_SESSION_TAG] = self.token
        return tags

    # -- cells ---------------------------------------------------------------------------------

    def _pre_cell(self, info: Any) -> None:
        self._runs_created = 0
        fluent = sys.modules.get("mlflow.tracking.fluent")
        self._last_before = _last_ended_run_id(fluent) if fluent is not None else None
        self._cell_started_ms = int(time.time() * 1000)
        spark_env.refresh(self)

    def _after_cell(self, record: CellRecord) -> None:
        if "mlflow" not in sys.modules:
            return
        try:
            self.finish_setup()
            self._snapshot_ended_runs(record)
        except Exception as exc:  # never into the user's cell
            warnings.warn(f"notebook logging after cell [{record.execution_count}] failed: {exc}",
                          NotebookWarning, stacklevel=2)

    def _snapshot_ended_runs(self, record: CellRecord) -> None:
        import mlflow

        active = mlflow.active_run()
        ended: list[str] = [run_id for run_id in self._open_runs
                            if active is None or run_id != active.info.run_id]
        ended.extend(run_id for run_id in self._runs_ended_in_cell() if run_id not in ended)
        if record.error is not None and active is not None:
            # the cell raised while a run was open: that run ends FAILED, with this cell in its snapshot
            while (run := mlflow.active_run()) is not None:
                self.snapshot(run.info.run_id)
                mlflow.end_run(status="FAILED")
                self._open_runs.discard(run.info.run_id)
            active = None
        for run_id in ended:
            self.snapshot(run_id)
            self._open_runs.discard(run_id)
        if active is not None:
            self._open_runs.add(active.info.run_id)

    def _runs_ended_in_cell(self) -> list[str]:
        """Runs created during the cell that are no longer active (``with mlflow.start_run():`` …)."""
        if not self._runs_created:
            return []
        import mlflow
        from mlflow.tracking import fluent

        active_ids = _active_run_ids(fluent)
        if self._runs_created == 1:
            last = _last_ended_run_id(fluent)
            ended_now = last and last != self._last_before and last not in active_ids
            return [last] if last and ended_now else []
        client = mlflow.MlflowClient()
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(
            experiments,
            filter_string=f"tags.`{KERNEL_SESSION_TAG}` = '{self.token}' "
                          f"and attributes.start_time >= {self._cell_started_ms}",
            max_results=10_000,
        )
        return [run.info.run_id for run in runs if run.info.run_id not in active_ids]

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self, run_id: str | None = None) -> Snapshot:
        """Build the snapshot of the cells run so far and log it to ``run_id`` (default: the active run).

        A logging failure (unwritable root, lost connection) is a warning; the snapshot is returned.
        """
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()  # ipykernel sends buffered prints from its IO thread: have them recorded first
            except (OSError, ValueError):
                pass
        title = self.notebook.name
        snap = take_snapshot(self.recorder.cells, max_bytes=self.max_bytes, title=title)
        if run_id is None and "mlflow" in sys.modules:
            import mlflow

            active = mlflow.active_run()
            run_id = active.info.run_id if active else None
        if run_id is not None:
            self._log(run_id, snap)
        return snap

    def _log(self, run_id: str, snap: Snapshot) -> None:
        import mlflow

        client = mlflow.MlflowClient()
        try:
            client.log_text(run_id, snap.ipynb, IPYNB_ARTIFACT)
            client.log_text(run_id, snap.html, HTML_ARTIFACT)
        except Exception as exc:
            warnings.warn(f"the notebook snapshot could not be logged to run {run_id}: {exc}; the run's other "
                          "data is unaffected", NotebookWarning, stacklevel=2)


def _last_ended_run_id(fluent: Any) -> str | None:
    """The id of the run ``mlflow.end_run`` ended last (a thread-local in MLflow 3, a plain global before)."""
    value = getattr(fluent, "_last_active_run_id", None)
    getter = getattr(value, "get", None)
    return getter() if callable(getter) else value


def _active_run_ids(fluent: Any) -> set[str]:
    """Ids of every run on the fluent stack (a nested run's parents stay active)."""
    stack = getattr(fluent, "_active_run_stack", None)
    getter = getattr(stack, "get", None)
    runs = getter() if callable(getter) else stack or []
    return {run.info.run_id for run in runs}
