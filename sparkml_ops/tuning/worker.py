"""One trial inside its Spark task: the trial's run made active, the objective called, its result checked.

The driver creates each trial's child run (committed when created, so every process sees
it) and sends it here; the executor pushes it on MLflow's active-run stack, so
``mlflow.log_*`` inside the objective lands in the trial's run. The driver records params,
the returned metrics and the final status; the executor commits only what the objective
logged itself, before the task ends, so it is visible when the study returns.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Unpickled objectives by study: a reused Python worker unpickles each study's objective once.
_OBJECTIVES: dict[str, Callable[[dict[str, Any]], Any]] = {}


@dataclass(frozen=True)
class TrialTask:
    """What the driver sends for one trial (picklable)."""

    number: int
    run: Any  # mlflow.entities.Run of the child run
    params: dict[str, Any]
    tracking_uri: str
    metric: str


@dataclass
class TrialOutcome:
    """What comes back: status, metrics, the optimised value or the error, and timings (ms)."""

    number: int
    run_id: str
    status: str  # FINISHED | FAILED
    metrics: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    error: str | None = None
    start_ms: int = 0
    end_ms: int = 0


def check_result(number: int, metric: str, result: Any) -> tuple[dict[str, float], float]:
    """The metrics of an objective's return value and the one optimised; ``ValueError`` names the trial."""
    if isinstance(result, Mapping):
        metrics = dict(result)
    else:
        metrics = {metric: result}
    checked: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or hasattr(value, "shape"):
            try:
                value = float(value)  # numpy scalars
            except (TypeError, ValueError):
                raise ValueError(f"trial {number} returned a non-numeric value {value!r} for metric {key!r}; "
                                 "the objective must return a number or a dict of numbers") from None
        if math.isnan(value):
            raise ValueError(f"trial {number} returned NaN for metric {key!r}")
        checked[str(key)] = float(value)
    if metric not in checked:
        raise ValueError(f"trial {number} returned metrics {sorted(checked)} but not {metric!r}, the metric "
                         "being optimised: return it, or pass metric= one of those")
    return checked, checked[metric]


def pickle_objective(objective: Any) -> bytes:
    """The objective as bytes for the executors; :class:`BadInput` (before any Spark job) when it cannot be."""
    import cloudpickle

    from sparkml_ops.errors import BadInput

    if not callable(objective):
        raise BadInput(f"objective {objective!r} must be a function taking a dict of parameters")
    try:
        return cloudpickle.dumps(objective)
    except Exception as exc:
        raise BadInput(f"objective {getattr(objective, '__name__', objective)!r} cannot be pickled to run on "
                       f"Spark executors ({type(exc).__name__}: {exc}); define it at module level and do not "
                       "capture locks, sessions, clients or open files") from exc


def _objective(objective_id: str, payload: Callable[[], bytes]) -> Callable[[dict[str, Any]], Any]:
    fn = _OBJECTIVES.get(objective_id)
    if fn is None:
        import cloudpickle

        fn = _OBJECTIVES[objective_id] = cloudpickle.loads(payload())
        while len(_OBJECTIVES) > 8:
            _OBJECTIVES.pop(next(iter(_OBJECTIVES)))
    return fn


def run_trial(task: TrialTask, objective_id: str, payload: Callable[[], bytes]) -> TrialOutcome:
    """Call the objective for one trial with the trial's run active; never raises for the objective's errors."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service.utils import _get_store

    mlflow.set_tracking_uri(task.tracking_uri)
    outcome = TrialOutcome(task.number, task.run.info.run_id, "FAILED", start_ms=int(time.time() * 1000))
    stack = fluent._active_run_stack.get()
    depth = len(stack)
    stack.append(fluent.ActiveRun(task.run))
    try:
        result = _objective(objective_id, payload)(dict(task.params))
        outcome.metrics, outcome.value = check_result(task.number, task.metric, result)
        outcome.status = "FINISHED"
    except BaseException as exc:  # the trial fails, the study goes on
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
        outcome.error = f"{type(exc).__name__}: {exc}{where}"
    finally:
        del stack[depth:]  # the objective may have started nested runs and left them open
        outcome.end_ms = int(time.time() * 1000)
        flush = getattr(_get_store(), "flush", None)
        if flush is not None:
            flush()
    return outcome
