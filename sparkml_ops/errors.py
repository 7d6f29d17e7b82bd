"""The one exception tree of sparkml_ops.

The errors know nothing of MLflow: the storage layer raises them as they are, and the MLflow
adapters (the tracking and registry stores, the artifact repository) turn them into
``MlflowException``\\s with MLflow's error codes at their edge
(:mod:`sparkml_ops.tracking.mlflow_errors`). They also subclass the matching builtin, so plain
``except ValueError`` works. Transient vs terminal is in the type: only
:class:`CommitConflict` is worth retrying.
"""

from __future__ import annotations

from typing import Any


class SparkmlOpsError(Exception):
    """Base class of our errors; ``message`` says what was wrong and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: errors travel from executors to the driver
        return (type(self), (self.message,))


class BadInput(SparkmlOpsError, ValueError):
    """A value breaks a rule; the message names the value and the rule."""


class NotFound(SparkmlOpsError, LookupError):
    """The named experiment, run, model, table or file does not exist."""


class AlreadyExists(SparkmlOpsError):
    """Something with this name or id exists already."""


class InvalidState(SparkmlOpsError):
    """The object is in a state that does not allow the operation (a deleted run, a stopped batcher)."""


class NotSupported(SparkmlOpsError, NotImplementedError):
    """A part of MLflow's interface this store deliberately does not implement."""


class StorageError(SparkmlOpsError, OSError):
    """The root or one of its tables is missing, corrupt, unreadable or read-only."""


class CommitConflict(SparkmlOpsError):
    """Transient: another writer committed first; retrying is safe."""


class ScoringError(SparkmlOpsError, RuntimeError):
    """A model failed on a batch in a Spark worker; the message names the model and the batch's columns."""


class TuningFailed(SparkmlOpsError, RuntimeError):
    """A hyperparameter study ended without one finished trial; the message names a failed trial and its error."""
