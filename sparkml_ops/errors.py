"""The one exception tree of sparkml_ops.

Errors MLflow code may see subclass ``MlflowException`` with MLflow's error codes, so the
stock client and the REST layer map them to the right status. They also subclass the
matching builtin, so plain ``except ValueError`` works. Transient vs terminal is in the
type: only :class:`CommitConflict` is worth retrying.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)


class SparkmlOpsError(MlflowException):
    """Base class; carries an MLflow error code."""

    default_code = INTERNAL_ERROR

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message, error_code=error_code or self.default_code)

    def __reduce__(self):  # picklable: errors travel from executors to the driver
        return (type(self), (self.message,))


class BadInput(SparkmlOpsError, ValueError):
    """A value breaks a rule; the message names the value and the rule."""

    default_code = INVALID_PARAMETER_VALUE


class NotFound(SparkmlOpsError, LookupError):
    default_code = RESOURCE_DOES_NOT_EXIST


class AlreadyExists(SparkmlOpsError):
    default_code = RESOURCE_ALREADY_EXISTS


class InvalidState(SparkmlOpsError):
    default_code = INVALID_STATE


class NotSupported(SparkmlOpsError, NotImplementedError):
    """A part of MLflow's interface this store deliberately does not implement."""

    default_code = INVALID_PARAMETER_VALUE


class StorageError(SparkmlOpsError, OSError):
    """The root or one of its tables is missing, corrupt, unreadable or read-only."""

    default_code = INTERNAL_ERROR


class CommitConflict(SparkmlOpsError):
    """Transient: another writer committed first; retrying is safe."""

    default_code = INTERNAL_ERROR


class ScoringError(SparkmlOpsError, RuntimeError):
    """A model failed on a batch in a Spark worker; the message names the model and the batch's columns."""

    default_code = INTERNAL_ERROR


class TuningFailed(SparkmlOpsError, RuntimeError):
    """A hyperparameter study ended without one finished trial; the message names a failed trial and its error."""

    default_code = INTERNAL_ERROR
