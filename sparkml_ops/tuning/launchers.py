"""How one trial runs: a Spark task calling a Python function, or a project run via spark-submit.

A launcher's ``launch(trial)`` blocks (the study calls it from one of ``parallelism``
threads) and returns a :class:`TrialOutcome`; it creates the trial's run with the tags it
is given, so a study killed mid-trial leaves a RUNNING child run that resume marks KILLED.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sparkml_ops.tuning.worker import TrialOutcome, TrialTask, check_result, run_trial

if TYPE_CHECKING:
    from sparkml_ops.projects.options import EnvManagerName

ERROR_TAG = "sparkml_ops.tuning.error"


@dataclass(frozen=True)
class TrialSpec:
    """One trial to run: its number, nested parameter values, and the tags its run is created with."""

    number: int
    params: dict[str, Any]
    flat_params: dict[str, Any]
    tags: dict[str, str]
    run_name: str


class Launcher(Protocol):
    records_outcome: bool

    def launch(self, trial: TrialSpec) -> TrialOutcome: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    for line in text:  # a Spark job failure: the Python error is the line worth showing
        if line.strip().startswith(("pyspark.errors", "PythonException", "Exception:", "RuntimeError")):
            return line.strip()[:2000]
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:2000]


class SparkFunctionLauncher:
    """Each trial is one Spark task (a one-partition job) calling ``objective`` on an executor."""

    records_outcome = True  # the study logs the returned metrics and ends the run

    def __init__(self, spark: Any, payload: bytes, *, client: Any, experiment_id: str, tracking_uri: str,
                 metric: str) -> None:
        self._sc = spark.sparkContext
        self._broadcast = self._sc.broadcast(payload)
        self._client, self._experiment_id = client, experiment_id
        self._tracking_uri, self._metric = tracking_uri, metric
        self._group = f"sparkml_ops-tune-{uuid.uuid4().hex[:12]}"

    def launch(self, trial: TrialSpec) -> TrialOutcome:
        from mlflow.entities import Param

        run = self._client.create_run(self._experiment_id, tags=trial.tags, run_name=trial.run_name)
        self._client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in trial.flat_params.items()])
        task = TrialTask(trial.number, run, trial.params, self._tracking_uri, self._metric)
        broadcast = self._broadcast
        objective_id = self._group

        def one(trial_task: TrialTask) -> TrialOutcome:
            return run_trial(trial_task, objective_id, lambda: broadcast.value)

        self._sc.setJobGroup(self._group, f"trial {trial.number}", interruptOnCancel=True)
        started = int(time.time() * 1000)
        try:
            # map, not mapPartitions: a task that consumes its input lets Spark reuse the Python worker
            return self._sc.parallelize([task], 1).map(one).collect()[0]
        except Exception as exc:  # the task itself died (worker crash, result not picklable, cancelled)
            return TrialOutcome(trial.number, run.info.run_id, "FAILED", error=_error_line(exc), start_ms=started,
                                end_ms=int(time.time() * 1000))

    def cancel(self) -> None:
        self._sc.cancelJobGroup(self._group)

    def close(self) -> None:
        self._broadcast.destroy()


class ProjectLauncher:
    """Each trial is an MLflow project run submitted with spark-submit; its metric is read back from the store."""

    records_outcome = False  # the job logged its metrics and the backend ended its run

    def __init__(self, uri: str, *, entry_point: str, client: Any, experiment_id: str, tracking_uri: str,
                 metric: str, master: str | None, env_manager: EnvManagerName | None,
                 spark_conf: Mapping[str, str] | None = None, spark_args: Sequence[str] = ()) -> None:
        self._uri, self._entry_point = uri, entry_point
        self._client, self._experiment_id = client, experiment_id
        self._tracking_uri, self._metric = tracking_uri, metric
        from sparkml_ops.projects.options import SparkOptions

        self._env_manager = env_manager
        self._spark = SparkOptions(master=master, conf=dict(spark_conf or {}), args=tuple(spark_args))
        self._running: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._env_ready = threading.Lock()  # the first trial builds (or finds) the env; the others reuse it
        self._built = False

    def launch(self, trial: TrialSpec) -> TrialOutcome:
        from sparkml_ops.projects.options import EnvOptions, TrackingOptions
        from sparkml_ops.projects.runner import run

        started = int(time.time() * 1000)
        parameters = {k: (json.dumps(v) if isinstance(v, (bool, type(None))) else v)
                      for k, v in trial.flat_params.items()}

        def submit():
            return run(self._uri, self._entry_point, parameters, spark=self._spark,
                       env=EnvOptions(manager=self._env_manager, progress=False),
                       tracking=TrackingOptions(experiment_id=self._experiment_id, tracking_uri=self._tracking_uri,
                                                run_name=trial.run_name, tags=trial.tags),
                       synchronous=False, stream_output=False)

        if self._built:
            submitted = submit()
        else:
            with self._env_ready:
                submitted = submit()
                self._built = True
        with self._lock:
            self._running[trial.number] = submitted
        try:
            ok = submitted.wait()
        finally:
            with self._lock:
                self._running.pop(trial.number, None)
        run_id = submitted.run_id
        outcome = TrialOutcome(trial.number, run_id, "FAILED", start_ms=started, end_ms=int(time.time() * 1000))
        if not ok:
            outcome.error = f"trial {trial.number}: project run {run_id} ended {submitted.get_status()}"
            self._client.set_tag(run_id, ERROR_TAG, outcome.error)
            return outcome
        logged = self._client.get_run(run_id).data.metrics
        try:
            outcome.metrics, outcome.value = check_result(trial.number, self._metric, logged)
        except ValueError as exc:  # the job ran, but the trial has no value: the run says why
            outcome.error = f"{exc} (project run {run_id})"
            self._client.set_tag(run_id, ERROR_TAG, outcome.error[:5000])
            self._client.set_terminated(run_id, "FAILED")
            return outcome
        outcome.status = "FINISHED"
        return outcome

    def cancel(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for submitted in running:
            submitted.cancel()

    def close(self) -> None:
        pass
