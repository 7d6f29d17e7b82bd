"""The driver loop: ask Optuna, launch up to ``parallelism`` trials at once, tell it the results.

The study's state lives in its runs: a parent run holds the settings and search space,
each trial is a child run tagged with its number and the raw values Optuna sampled. So a
study whose driver died can be resumed from the lake alone (:mod:`.resume`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from sparkml_ops.errors import BadInput, TuningFailed
from sparkml_ops.tuning import space as S
from sparkml_ops.tuning.launchers import ERROR_TAG, Launcher, TrialSpec
from sparkml_ops.tuning.result import TrialRecord, TuneResult, trials_frame
from sparkml_ops.tuning.worker import TrialOutcome

PREFIX = "sparkml_ops.tuning."
STUDY_TAG = PREFIX + "study"
TRIAL_TAG = PREFIX + "trial"
RAW_TAG = PREFIX + "raw_params"
PARENT_TAG = "mlflow.parentRunId"
SAMPLERS = ("tpe", "random", "grid")


@dataclass(frozen=True)
class Settings:
    """A study's settings, checked once, before any run or Spark job exists."""

    max_trials: int
    parallelism: int
    metric: str
    mode: Literal["min", "max"]
    sampler: str
    seed: int | None
    timeout_s: float | None
    max_failures: int | None
    patience: int | None

    @classmethod
    def check(cls, *, max_trials: Any, parallelism: Any, metric: Any, mode: Any, sampler: Any, seed: Any,
              timeout_s: Any, max_failures: Any, patience: Any) -> Settings:
        def positive(name: str, value: Any, *, optional: bool = True, kind: type = int) -> Any:
            if value is None and optional:
                return None
            ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
            if not ok or not value > 0 or (kind is float and not math.isfinite(value)):
                raise BadInput(f"{name}={value!r} must be a positive {'number' if kind is float else 'integer'}")
            return value

        positive("max_trials", max_trials, optional=False)
        positive("parallelism", parallelism, optional=False)
        positive("timeout_s", timeout_s, kind=float)
        positive("max_failures", max_failures)
        positive("patience", patience)
        if not isinstance(metric, str) or not metric:
            raise BadInput(f"metric={metric!r} must be the name of a metric the objective returns")
        if mode not in ("min", "max"):
            raise BadInput(f"mode={mode!r} must be 'min' or 'max'")
        if sampler not in SAMPLERS:
            raise BadInput(f"sampler={sampler!r} must be one of {list(SAMPLERS)} (Optuna's TPE, random or grid)")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise BadInput(f"seed={seed!r} must be an integer")
        return cls(max_trials, parallelism, metric, mode, sampler, seed, timeout_s, max_failures, patience)


def make_sampler(settings: Settings, space: Mapping[str, Any]) -> Any:
    import optuna

    if settings.sampler == "grid":
        return optuna.samplers.GridSampler(S.grid_space(space), seed=settings.seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    # constant liar: parallel trials still running count as pessimistic guesses, so TPE spreads them
    return optuna.samplers.TPESampler(seed=settings.seed, constant_liar=settings.parallelism > 1)


def new_optuna_study(settings: Settings, space: Mapping[str, Any]) -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("sparkml_ops.tuning needs Optuna, plotly and matplotlib: "
                          "pip install 'sparkml_ops[tuning]'") from exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="minimize" if settings.mode == "min" else "maximize",
                               sampler=make_sampler(settings, space))


@dataclass
class StudyState:
    """What the loop knows: every trial so far (resumed ones included), counters for the stop rules."""

    settings: Settings
    records: list[TrialRecord] = field(default_factory=list)
    next_number: int = 0
    best_value: float | None = None
    since_best: int = 0
    stop_reason: str | None = None

    @property
    def done(self) -> int:
        return sum(1 for r in self.records if r.status in ("FINISHED", "FAILED"))

    @property
    def failures(self) -> int:
        return sum(1 for r in self.records if r.status == "FAILED")

    def better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.settings.mode == "min" else value > self.best_value

    def observe(self, record: TrialRecord) -> None:
        """Count a trial that ended (in completion order): best value and patience."""
        self.records.append(record)
        if record.status != "FINISHED" or record.value is None:
            return
        if self.better(record.value):
            self.best_value, self.since_best = record.value, 0
        else:
            self.since_best += 1


class Study:
    """One study: its parent run, the Optuna study, the launcher, and the loop that connects them."""

    def __init__(self, *, client: Any, experiment_id: str, parent_run_id: str, space: Mapping[str, Any],
                 settings: Settings, launcher: Launcher, optuna_study: Any, state: StudyState) -> None:
        self.client, self.experiment_id, self.parent_run_id = client, experiment_id, parent_run_id
        self.space, self.settings, self.launcher = space, settings, launcher
        self.optuna, self.state = optuna_study, state
        self._optuna_lock = threading.Lock()
        self._running: dict[Future, tuple[Any, TrialSpec]] = {}

    # -- the loop ----------------------------------------------------------------------

    def _should_launch(self, started: float) -> bool:
        s, st = self.settings, self.state
        if st.done + len(self._running) >= s.max_trials:
            return False
        if st.stop_reason:
            return False
        if s.max_failures is not None and st.failures >= s.max_failures:
            st.stop_reason = "max_failures"
        elif s.timeout_s is not None and time.monotonic() - started >= s.timeout_s:
            st.stop_reason = "timeout"
        elif s.patience is not None and st.since_best >= s.patience:
            st.stop_reason = "patience"
        elif s.sampler == "grid" and self._grid_exhausted():
            st.stop_reason = "grid_exhausted"
        return st.stop_reason is None

    def _grid_exhausted(self) -> bool:
        sampler = self.optuna.sampler
        grid_size = len(sampler._all_grids) if hasattr(sampler, "_all_grids") else math.inf
        return len(self.optuna.get_trials(deepcopy=False)) >= grid_size

    def _ask(self) -> tuple[Any, TrialSpec]:
        with self._optuna_lock:
            trial = self.optuna.ask()
            params = S.suggest(trial, self.space)
        number = self.state.next_number
        self.state.next_number += 1
        tags = {PARENT_TAG: self.parent_run_id, TRIAL_TAG: str(number), RAW_TAG: json.dumps(trial.params)}
        return trial, TrialSpec(number, params, S.flatten(params), tags, f"trial-{number}")

    def run(self) -> TuneResult:
        started = time.monotonic()
        pool = ThreadPoolExecutor(self.settings.parallelism, thread_name_prefix="sparkml_ops-trial")
        try:
            while True:
                while len(self._running) < self.settings.parallelism and self._should_launch(started):
                    trial, spec = self._ask()
                    self._running[pool.submit(self.launcher.launch, spec)] = (trial, spec)
                if not self._running:
                    break
                finished, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
                for future in finished:
                    trial, spec = self._running.pop(future)
                    self._finish(trial, spec, future.result())
        except BaseException:
            self._abort()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return self._conclude()

    def _finish(self, trial: Any, spec: TrialSpec, outcome: TrialOutcome) -> None:
        import optuna
        from mlflow.entities import Metric, RunTag

        if outcome.status == "FINISHED":
            self._tell(trial, outcome.value)
        else:
            self._tell(trial, state=optuna.trial.TrialState.FAIL)
        if self.launcher.records_outcome:
            metrics = [Metric(k, v, outcome.end_ms, 0) for k, v in outcome.metrics.items()]
            tags = [RunTag(ERROR_TAG, outcome.error[:5000])] if outcome.error else []
            self.client.log_batch(outcome.run_id, metrics=metrics, tags=tags)
            self.client.set_terminated(outcome.run_id, outcome.status, end_time=outcome.end_ms)
        self.state.observe(TrialRecord(spec.number, outcome.run_id, outcome.status, outcome.value, spec.params,
                                       outcome.metrics, outcome.start_ms, outcome.end_ms, outcome.error))

    def _tell(self, trial: Any, value: float | None = None, **kwargs: Any) -> None:
        with self._optuna_lock:
            try:
                self.optuna.tell(trial, value, **kwargs)
            except RuntimeError as exc:
                # Optuna's GridSampler stops the study when the grid is done, which only works inside
                # optimize(); the trial is recorded all the same and _should_launch sees the grid is done.
                if "Study.stop" not in str(exc):
                    raise

    def _abort(self) -> None:
        """The driver is interrupted: stop the trials, end every run it started KILLED, never RUNNING."""
        try:
            self.launcher.cancel()
        finally:
            for future in list(self._running):
                try:
                    outcome = future.result(timeout=30)
                except BaseException:
                    continue
                self.client.set_terminated(outcome.run_id, "KILLED")
            self.client.set_tag(self.parent_run_id, PREFIX + "stop_reason", "interrupted")
            self.client.set_terminated(self.parent_run_id, "KILLED")

    # -- the end -----------------------------------------------------------------------

    def _conclude(self) -> TuneResult:
        from sparkml_ops.tuning.plots import log_plots

        st, s = self.state, self.settings
        finished = [r for r in st.records if r.status == "FINISHED"]
        reason = st.stop_reason or ("max_trials" if st.done >= s.max_trials else "completed")
        summary = {PREFIX + "stop_reason": reason, PREFIX + "finished": str(len(finished)),
                   PREFIX + "failed": str(st.failures)}
        for key, value in summary.items():
            self.client.set_tag(self.parent_run_id, key, value)
        if not finished:
            self.client.set_terminated(self.parent_run_id, "FAILED")
            first = min((r for r in st.records if r.error), key=lambda r: r.number, default=None)
            detail = f"; trial {first.number} (run {first.run_id}) failed with: {first.error}" if first else ""
            raise TuningFailed(f"study {self.parent_run_id} has no finished trial out of {len(st.records)} "
                               f"(stopped: {reason}){detail}")
        sign = 1 if s.mode == "min" else -1
        best = min(finished, key=lambda r: (sign * r.value, r.number))  # type: ignore[operator]
        self._log_best(best)
        log_plots(self.client, self.parent_run_id, self.optuna, s.metric)
        self.client.set_terminated(self.parent_run_id, "FINISHED")
        flush = getattr(self.client._tracking_client.store, "flush", None)
        if flush is not None:
            flush()  # other processes (a resume, SQL) see the study at once
        return TuneResult(best_params=best.params, best_value=float(best.value),  # type: ignore[arg-type]
                          best_run_id=best.run_id, parent_run_id=self.parent_run_id,
                          trials=trials_frame(st.records, s.metric))

    def _log_best(self, best: TrialRecord) -> None:
        from mlflow.entities import Metric, RunTag

        flat = S.flatten(best.params)
        tags = [RunTag(PREFIX + "best_run_id", best.run_id), RunTag(PREFIX + "best_trial", str(best.number)),
                RunTag(PREFIX + "best_params", json.dumps(flat, default=str)[:5000])]
        tags += [RunTag(f"best.{k}", str(v)) for k, v in flat.items()]
        metric = Metric(f"best_{self.settings.metric}", float(best.value), int(time.time() * 1000), 0)  # type: ignore[arg-type]
        self.client.log_batch(self.parent_run_id, metrics=[metric], tags=tags)
