"""Code that runs inside Spark's Python workers: find the shipped model, load it once, score batches.

A Python worker is reused across tasks, so the loaded predictor lives in a module-level
cache keyed by the model's content hash: one load per worker process, however many tasks
or micro-batches follow. Failures come back as :class:`ScoringError` naming the model and
the batch's columns, so the driver-side traceback says which model broke on what.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from sparkml_ops.errors import ScoringError
from sparkml_ops.models.arrow_io import to_arrow
from sparkml_ops.models.handle import ModelHandle
from sparkml_ops.models.predictors import Predictor, load_predictor

_T = TypeVar("_T")
_PREDICTORS: dict[str, Predictor] = {}
_LOADS: dict[str, int] = {}  # model digest -> loads in this process (one, unless the cache failed)


def model_dir(handle: ModelHandle) -> Path:
    """Where this worker sees the model: the unpacked Spark archive, else the driver's copy."""
    looked = []
    if handle.archive:
        try:
            from pyspark import SparkFiles

            candidate = Path(SparkFiles.get(handle.archive))
            looked.append(str(candidate))
            if (candidate / "MLmodel").is_file():
                return candidate
        except Exception as exc:  # noqa: BLE001 - no SparkFiles here (plain Python): try the local copy
            looked.append(f"SparkFiles ({exc})")
    local = Path(handle.local_path)
    looked.append(str(local))
    if (local / "MLmodel").is_file():
        return local
    raise ScoringError(f"model {handle.label} is not on this worker: looked in {looked}")


def predictor(handle: ModelHandle) -> Predictor:
    """The loaded model for ``handle`` (loaded on first use in this process)."""
    key = f"{handle.digest}:{handle.options}"
    found = _PREDICTORS.get(key)
    if found is None:
        path = model_dir(handle)
        try:
            found = load_predictor(path, handle.options)
        except ScoringError:
            raise
        except Exception as exc:
            raise ScoringError(f"model {handle.label} could not be loaded from {path} by {sys.executable}: "
                               f"{type(exc).__name__}: {exc}") from exc
        _PREDICTORS[key] = found
        _LOADS[handle.digest] = _LOADS.get(handle.digest, 0) + 1
    return found


def load_count(digest: str) -> int:
    """How many times this process loaded the model with content hash ``digest``."""
    return _LOADS.get(digest, 0)


def _describe(names: Sequence[str], arrays: Sequence[pa.Array]) -> str:
    return ", ".join(f"{n}: {a.type}" for n, a in zip(names, arrays, strict=False))


def score_arrays(handle: ModelHandle, arrays: Sequence[pa.Array], names: Sequence[str] | None = None) -> pa.Array:
    """Predictions for one Arrow batch of input columns, in slices of at most ``batch_size`` rows."""
    names = list(names or handle.input_names)
    n = len(arrays[0]) if arrays else 0
    if n == 0:
        return pa.array([], type=handle.result_arrow)
    model = predictor(handle)
    step = max(1, handle.batch_size)
    parts = []
    for start in range(0, n, step):
        chunk = [a.slice(start, step) for a in arrays] if n > step else list(arrays)
        rows = len(chunk[0])
        try:
            parts.append(to_arrow(model.predict_arrays(chunk, handle.input_names), handle.result_arrow, rows))
        except ScoringError:
            raise
        except Exception as exc:
            raise ScoringError(
                f"model {handle.label} failed on a batch of {rows} rows with columns [{_describe(names, chunk)}] "
                f"({model.kind} path): {type(exc).__name__}: {exc}") from exc
    return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)


def udf_function(handle: ModelHandle, names: Sequence[str]) -> Callable[..., Iterator[pa.Array]]:
    """The body of the Arrow UDF (iterator form): Spark's batches merged up to ``batch_size`` rows.

    Spark sends ``maxRecordsPerBatch`` rows at a time (10,000 by default); per-call costs
    of a model (a tree ensemble dispatches once per tree) shrink with larger calls, and the
    iterator form lets the output batches differ in size from the input ones.
    """
    bound = tuple(names)

    def predict(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:  # the hint tells Spark the UDF kind
        columns = (item if isinstance(item, tuple) else (item,) for item in batches)
        for group in _gathered(columns, lambda c: len(c[0]), handle.batch_size):
            merged = list(group[0]) if len(group) == 1 else \
                [pa.concat_arrays([part[j] for part in group]) for j in range(len(group[0]))]
            yield score_arrays(handle, merged, bound)

    return predict


def _gathered(items: Iterable[_T], rows: Callable[[_T], int], limit: int) -> Iterator[list[_T]]:
    """``items`` in groups of at least ``limit`` rows (the last may hold fewer); empty items dropped."""
    group: list[_T] = []
    count = 0
    for item in items:
        n = rows(item)
        if n == 0:
            continue
        group.append(item)
        count += n
        if count >= limit:
            yield group
            group, count = [], 0
    if group:
        yield group


MapBody = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def map_function(handle: ModelHandle, columns: Sequence[str], output: str,
                 extra: Mapping[str, object] | None = None) -> MapBody:
    """The body of ``mapInArrow``: whole rows in, the same rows plus the result column out.

    Spark's Arrow batches (``maxRecordsPerBatch`` rows) are merged up to ``batch_size`` rows
    so the model sees large calls; ``extra`` adds constant columns (e.g. the model's ids).
    """
    wanted = list(columns)
    constants = dict(extra or {})

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for group in _gathered(batches, lambda b: b.num_rows, handle.batch_size):
            batch = group[0] if len(group) == 1 else pa.concat_batches(group)
            out = batch.append_column(output, score_arrays(handle, [batch.column(n) for n in wanted], wanted))
            for name, value in constants.items():
                out = out.append_column(name, pa.array([value] * batch.num_rows, type=pa.string()))
            yield out

    return run


def probe() -> dict[str, object]:
    """Facts about this worker process: its interpreter and where key packages load from."""
    info: dict[str, object] = {"executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid(),
                               "models_loaded": sum(_LOADS.values()),
                               "predictors": sorted({p.kind for p in _PREDICTORS.values()})}
    for name in ("sklearn", "mlflow", "pyarrow", "sparkml_ops"):
        try:
            module = __import__(name)
            info[f"{name}_file"] = getattr(module, "__file__", None)
        except ImportError:
            info[f"{name}_file"] = None
    return info
