"""The edge between our errors and MLflow's: our exceptions become ``MlflowException``\\s.

The storage layer raises :mod:`sparkml_ops.errors` types, which know nothing of MLflow. What
MLflow calls (the tracking and registry stores, the artifact repository) is wrapped with
:func:`mlflow_errors`, which re-raises each of our errors as an exception that is *both* the
original type and an ``MlflowException`` with the matching error code, so MLflow's client and
REST layer answer 404/400 and a caller's ``except NotFound`` still works.

    @mlflow_errors
    class DeltaTrackingStore(AbstractStore): ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)

from sparkml_ops.errors import (
    AlreadyExists,
    BadInput,
    InvalidState,
    NotFound,
    NotSupported,
    SparkmlOpsError,
)

#: Our error type -> MLflow error code; the first match along the class's MRO wins.
CODES: dict[type[SparkmlOpsError], int] = {
    BadInput: INVALID_PARAMETER_VALUE,
    NotFound: RESOURCE_DOES_NOT_EXIST,
    AlreadyExists: RESOURCE_ALREADY_EXISTS,
    InvalidState: INVALID_STATE,
    NotSupported: INVALID_PARAMETER_VALUE,
    SparkmlOpsError: INTERNAL_ERROR,  # storage faults, commit conflicts, scoring failures
}

_TRANSLATED: dict[type[SparkmlOpsError], type[SparkmlOpsError]] = {}
C = TypeVar("C", bound=type)


def error_code(exc: SparkmlOpsError) -> int:
    """The MLflow error code for one of our errors."""
    return next(CODES[cls] for cls in type(exc).__mro__ if cls in CODES)


def _rebuild(cls: type[SparkmlOpsError], message: str) -> BaseException:
    return to_mlflow(cls(message))


def _mlflow_type(cls: type[SparkmlOpsError]) -> type[SparkmlOpsError]:
    """``cls`` and ``MlflowException`` in one type (made once per class)."""
    made = _TRANSLATED.get(cls)
    if made is None:
        made = type(cls.__name__, (cls, MlflowException), {
            "__module__": cls.__module__, "__qualname__": cls.__qualname__, "__str__": MlflowException.__str__,
            "__reduce__": lambda self: (_rebuild, (cls, self.message))})
        _TRANSLATED[cls] = made
    return made


def to_mlflow(exc: BaseException) -> BaseException:
    """``exc`` as an ``MlflowException`` of MLflow's code if it is one of ours; anything else unchanged."""
    if not isinstance(exc, SparkmlOpsError) or isinstance(exc, MlflowException):
        return exc
    cls = _mlflow_type(type(exc))
    out = cls.__new__(cls, exc.message)
    vars(out).update(vars(exc))
    MlflowException.__init__(out, exc.message, error_code=error_code(exc))  # type: ignore[arg-type]
    return out


def _translating(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generate(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from func(*args, **kwargs))
            except SparkmlOpsError as exc:
                raise to_mlflow(exc) from exc

        generate.__wrapped_by_mlflow_errors__ = True  # type: ignore[attr-defined]
        return generate

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SparkmlOpsError as exc:
            raise to_mlflow(exc) from exc

    call.__wrapped_by_mlflow_errors__ = True  # type: ignore[attr-defined]
    return call


def _is_ours(func: Any) -> bool:
    return inspect.isfunction(func) and (func.__module__ or "").startswith("sparkml_ops.")


def mlflow_errors(cls: C) -> C:
    """Class decorator: our methods that MLflow can call raise MLflow-typed errors.

    Wrapped: ``__init__`` and every public method implemented in sparkml_ops, and our
    implementations of the private hooks MLflow's base classes call (``_download_file``, ...).
    """
    foreign = {name for base in cls.__mro__[1:] if not base.__module__.startswith("sparkml_ops.")
               for name in vars(base)}
    for name in dir(cls):
        if name.startswith("__") and name != "__init__":
            continue
        if name.startswith("_") and name not in foreign and name != "__init__":
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (staticmethod, classmethod, property)) or not _is_ours(static):
            continue
        if getattr(static, "__wrapped_by_mlflow_errors__", False):
            continue
        setattr(cls, name, _translating(static))
    return cls
