"""The one predictor registry: every place that scores a model loads it here, by one policy.

Backends, in the order the core tries them: ``compiled`` (a Spark SQL expression, chosen on
the driver by :func:`compiled_backend`, Spark only), ``onnx`` (onnxruntime on one matrix),
``sklearn`` (the estimator method pyfunc ``predict`` calls, on one matrix) and ``pyfunc``
(MLflow's, always loaded: the reference and the fallback).

The fast-path policy of :func:`load_predictor`, the same for the Spark workers, the jobs and the
REST server: a matrix backend is taken only when fast paths are allowed, the inputs are one
numeric matrix (:meth:`~sparkml_ops.models.spec.InputSpec.matrix`) and, on the serving input
example (else synthetic rows), its output in pyfunc's form equals pyfunc ``predict``'s. When pyfunc
cannot score those rows at all (its ONNX wrapper fails on outputs of different widths), the ONNX
backend — the graph pyfunc would run — stays on; the sklearn one does not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from sparkml_ops import config
from sparkml_ops.models.arrow_io import to_frame, to_matrix
from sparkml_ops.models.spec import InputSpec, MatrixSpec, input_spec

_log = logging.getLogger(__name__)
Backend = Literal["compiled", "onnx", "sklearn", "pyfunc"]
CompileMode = Literal["auto"] | bool
_FAST_METHODS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba")
_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
}


def allow_pickle_default(explicit: bool | None) -> bool:
    """``explicit``, else the ``allow_pickle`` setting (``$MLFLOW_ALLOW_PICKLE_DESERIALIZATION``, what MLflow's
    loaders honour)."""
    return bool(config.resolve("allow_pickle", explicit))


@contextlib.contextmanager
def allow_unpickling(allowed: bool) -> Iterator[None]:
    """Lets MLflow unpickle model files during a load when the caller allowed it."""
    key = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    previous = os.environ.get(key)
    if allowed:
        os.environ[key] = "true"
    try:
        yield
    finally:
        if allowed and previous is None:
            os.environ.pop(key, None)
        elif allowed and previous is not None:
            os.environ[key] = previous


@dataclass(frozen=True)
class LoadOptions:
    """What, besides the model, decides how it loads: ``fast=False`` keeps MLflow's pyfunc path."""

    fast: bool = True
    allow_pickle: bool = False
    onnx_threads: int = 1


class _MatrixBackend:
    """A fast path: one numeric matrix in, the model's own output out."""

    kind: Backend
    trusted_without_reference = False  # stays on when pyfunc cannot score the check rows
    arrow_dtype: np.dtype

    def predict(self, matrix: np.ndarray) -> Any:
        raise NotImplementedError

    def pyfunc_form(self, output: Any) -> Any:
        """``output`` as pyfunc ``predict`` returns it (what the REST server encodes)."""
        return output

    def result_form(self, output: Any) -> Any:
        """``output`` as the Spark result column takes it (the signature's outputs)."""
        return output


class _Sklearn(_MatrixBackend):
    kind = "sklearn"

    def __init__(self, method: Callable[[np.ndarray], Any], estimator: Any, matrix: MatrixSpec) -> None:
        self._method = method
        # Arrow columns become this matrix: float32 for trees (scikit-learn compares float32 features, so
        # this skips its copy), else the signature's float type; integers as float64 (nulls become NaN)
        floats = matrix.dtype if matrix.dtype.kind == "f" else np.dtype("float64")
        self.arrow_dtype = np.dtype("float32") if _is_tree_model(estimator) else floats

    def predict(self, matrix: np.ndarray) -> Any:
        with warnings.catch_warnings():
            # fitted on a DataFrame, scored on the same columns as a matrix: the warning is noise
            warnings.filterwarnings("ignore", message=".*feature names.*")
            return self._method(matrix)


def _is_tree_model(model: Any) -> bool:
    """A single tree or an ensemble of trees (not a pipeline: earlier steps may need float64)."""
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, BaseDecisionTree):
        return True
    trees = getattr(model, "estimators_", None)
    if isinstance(trees, np.ndarray):
        trees = trees.ravel().tolist()
    return isinstance(trees, list) and bool(trees) and all(isinstance(t, BaseDecisionTree) for t in trees)


class _Onnx(_MatrixBackend):
    kind = "onnx"
    trusted_without_reference = True

    def __init__(self, path: Path, meta: Any, threads: int) -> None:
        import onnxruntime as ort

        conf = meta.flavors["onnx"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        providers = [p for p in conf.get("providers") or ["CPUExecutionProvider"]
                     if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(str(path / conf["data"]), sess_options=options, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self.arrow_dtype = np.dtype(_ORT_DTYPES.get(self._session.get_inputs()[0].type, np.float32))
        self._outputs = [o.name for o in self._session.get_outputs()]  # all of them, as MLflow's wrapper runs
        schema = meta.get_output_schema()
        wanted = [str(s.name) for s in schema.inputs if s.name is not None] if schema is not None else []
        self._kept = [n for n in wanted if n in self._outputs] or self._outputs

    def predict(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        results = self._session.run(self._outputs, {self._input: matrix.astype(self.arrow_dtype, copy=False)})
        return dict(zip(self._outputs, results, strict=True))

    def pyfunc_form(self, output: dict[str, np.ndarray]) -> Any:
        import pandas as pd

        return pd.DataFrame.from_dict({name: np.asarray(value).reshape(-1) for name, value in output.items()})

    def result_form(self, output: dict[str, np.ndarray]) -> Any:
        if len(self._kept) == 1:
            return output[self._kept[0]]
        return {name: output[name] for name in self._kept}


class Predictor:
    """A loaded model: MLflow's pyfunc, and the fast backend the policy chose (if any).

    ``kind`` names the backend that scores (``"sklearn"``, ``"onnx"`` or ``"pyfunc"``),
    ``reason`` why no fast backend was taken, ``matrix`` the inputs as one matrix when one was.
    """

    def __init__(self, pyfunc: Any, inputs: InputSpec, backend: _MatrixBackend | None, matrix: MatrixSpec | None,
                 reason: str) -> None:
        self.pyfunc = pyfunc
        self.inputs = inputs
        self._backend = backend
        self.matrix = matrix if backend is not None else None
        self.kind: Backend = backend.kind if backend is not None else "pyfunc"
        self.reason = reason

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        """The fast backend's output for a checked input matrix, in pyfunc's form (REST answers)."""
        assert self._backend is not None, "predict_matrix is called for fast-path models only"
        return self._backend.pyfunc_form(self._backend.predict(matrix))

    def predict_arrays(self, arrays: Sequence[pa.Array], names: Sequence[str]) -> Any:
        """The output for Arrow columns ``arrays`` named ``names`` (the model's names, or positions)."""
        backend, matrix = self._backend, self.matrix
        if backend is not None and matrix is not None:
            if matrix.names is not None and tuple(names) != matrix.names:
                position = {n: i for i, n in enumerate(names)}
                arrays = [arrays[position[n]] for n in matrix.names]
            return backend.result_form(backend.predict(to_matrix(arrays, backend.arrow_dtype)))
        if self.inputs.kind == "tensor":
            return self.pyfunc.predict(to_matrix(arrays, self.inputs.tensor_dtype or "float64"))
        return self.pyfunc.predict(to_frame(arrays, names))


def load_predictor(path: Path, options: LoadOptions) -> Predictor:
    """The model in ``path`` with the backend the fast-path policy chooses (see the module docstring).

    Raises whatever MLflow raises when the model cannot load at all (a missing flavor
    dependency, unpickling not allowed); a fast backend that cannot load or check only
    leaves the model on pyfunc, with the reason in :attr:`Predictor.reason`.
    """
    import mlflow.pyfunc

    with allow_unpickling(options.allow_pickle):
        pyfunc = mlflow.pyfunc.load_model(str(path))
    inputs = input_spec(pyfunc.metadata)
    if not options.fast:
        return Predictor(pyfunc, inputs, None, None, "disabled by option")
    backend, matrix, reason = _fast_backend(path, pyfunc, inputs, options)
    if backend is not None and matrix is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reason = _check(path, pyfunc, backend, matrix)
        if reason:
            _log.warning("fast path off for %s: %s", path, reason)
            backend = None
    return Predictor(pyfunc, inputs, backend, matrix, reason)


def _fast_backend(path: Path, pyfunc: Any, inputs: InputSpec,
                  options: LoadOptions) -> tuple[_MatrixBackend | None, MatrixSpec | None, str]:
    flavors = pyfunc.metadata.flavors
    if "onnx" in flavors:
        matrix, why = inputs.matrix()
        if matrix is None:
            return None, None, why
        return _Onnx(path, pyfunc.metadata, options.onnx_threads), matrix, ""
    estimator, method, why = _estimator_method(pyfunc)
    if method is None:
        return None, None, why
    order = getattr(estimator, "feature_names_in_", None)
    matrix, why = inputs.matrix(None if order is None else [str(n) for n in order])
    if matrix is None:
        return None, None, why
    return _Sklearn(method, estimator, matrix), matrix, ""


def _estimator_method(pyfunc: Any) -> tuple[Any, Callable[[np.ndarray], Any] | None, str]:
    """The scikit-learn estimator and the method pyfunc ``predict`` calls, if it is that simple."""
    from mlflow.sklearn import _SklearnModelWrapper

    impl = pyfunc._model_impl
    if not isinstance(impl, _SklearnModelWrapper):
        return None, None, f"the pyfunc implementation is {type(impl).__name__}, not scikit-learn's or ONNX's"
    estimator = impl.get_raw_model()
    fn = pyfunc._predict_fn
    if getattr(fn, "__func__", None) is _SklearnModelWrapper.predict:
        return estimator, estimator.predict, ""
    if getattr(fn, "__self__", None) is estimator and getattr(fn, "__name__", "") in _FAST_METHODS:
        return estimator, fn, ""
    return None, None, f"pyfunc predict_fn {getattr(fn, '__name__', fn)!r} is not a plain estimator method"


def _check_rows(path: Path, pyfunc: Any, matrix: MatrixSpec) -> tuple[np.ndarray, Any]:
    """(matrix, pyfunc input) from the saved serving example, else a few synthetic rows."""
    from mlflow.pyfunc.scoring_server import _parse_json_data

    info = getattr(pyfunc.metadata, "saved_input_example_info", None) or {}
    example = info.get("serving_input_path")
    if example and (path / example).is_file():
        try:
            data = _parse_json_data((path / example).read_text(), pyfunc.metadata,
                                    pyfunc.metadata.get_input_schema()).data
            if matrix.names is None:
                return np.asarray(data, dtype=matrix.dtype), data
            table = pa.Table.from_pandas(data[list(matrix.names)], preserve_index=False)
            return to_matrix(table.columns, matrix.dtype), data
        except Exception as exc:  # noqa: BLE001 - the example may use a form the fast path does not take
            _log.info("serving example not usable for the fast-path check: %s", exc)
    rows = np.vstack([np.zeros(matrix.width), np.ones(matrix.width),
                      np.arange(matrix.width) % 7 - 3.0]).astype(matrix.dtype)
    if matrix.names is None:
        return rows, rows
    import pandas as pd

    dtypes = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}
    frame = pd.DataFrame({n: rows[:, j].astype(dtypes[matrix.type_names[j]]) for j, n in enumerate(matrix.names)})
    return rows, frame


def _check(path: Path, pyfunc: Any, backend: _MatrixBackend, matrix: MatrixSpec) -> str:
    """Empty when ``backend`` answers the check rows as pyfunc does; else why the fast path is off."""
    try:
        rows, data = _check_rows(path, pyfunc, matrix)
        got = backend.predict(rows)
    except Exception as exc:  # noqa: BLE001 - any failure of the fast path means: do not use it
        return f"the {backend.kind} fast path failed on the check rows: {type(exc).__name__}: {exc}"
    try:
        expected = pyfunc.predict(data)
    except Exception as exc:  # noqa: BLE001 - pyfunc's own failure, reported in the reason
        if backend.trusted_without_reference:
            return ""
        return f"could not compare the fast path with pyfunc predict: {type(exc).__name__}: {exc}"
    try:
        same = _same(backend.pyfunc_form(got), expected)
    except (TypeError, ValueError) as exc:
        return f"the {backend.kind} fast path's output cannot be compared with pyfunc's: {exc}"
    return "" if same else "the fast path's output differs from pyfunc predict on the check rows"


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(a, b))


def compiled_backend(resolved: Any, result: Any, mode: CompileMode, allow_pickle: bool | None) -> tuple[Any, str]:
    """The ``compiled`` backend: (Compiled, "") or (None, why not) — logged once for ``"auto"``, raised for ``True``.

    Spark only (the result is a Spark SQL expression); when it is not taken, the model scores
    through :func:`load_predictor` in the Python workers.
    """
    if mode is False:
        return None, "compile=False"
    from mlflow.exceptions import MlflowException

    from sparkml_ops.models.compile import NotCompilable, compile_model

    try:
        compiled = compile_model(resolved, result_type=result, allow_pickle=allow_pickle)
        if mode == "auto" and compiled.tree_count > 1:
            # measured (bench_spark_udf, 2M rows, Spark 4.3, local[2]): a compiled RandomForest of 50 trees
            # scored at 0.12x and HistGradientBoosting(100) at 0.30x the rows/s of MLflow's spark_udf, as
            # whole-stage code keeps each tree in one method too large to JIT well (0.68x / 1.19x with
            # whole-stage codegen off, a session-wide setting) — so "auto" keeps ensembles in Python;
            # compile=True (and to_sql) still compiles them
            reason = (f"{compiled.description}: tree ensembles ({compiled.tree_count} trees) score faster in "
                      "Python on Spark here; compile=True compiles them anyway")
            _log.warning("model %s scores through the Python UDF: %s", resolved.label, reason)
            return None, reason
        return compiled, ""
    except (MlflowException, AttributeError, TypeError, ValueError, IndexError, KeyError, ImportError, OSError) as exc:
        # e.g. the driver may not unpickle the model, or a model shape the compiler did not foresee
        if not isinstance(exc, NotCompilable):
            exc = NotCompilable(f"the compiler failed: {type(exc).__name__}: {exc}")
        if mode is True:
            raise NotCompilable(f"model {resolved.label} does not compile to Spark SQL: {exc.message}") from None
        _log.warning("model %s scores through the Python UDF: it does not compile to Spark SQL: %s",
                     resolved.label, exc.message)
        return None, exc.message


__all__ = ["LoadOptions", "Predictor", "allow_pickle_default", "allow_unpickling", "compiled_backend",
           "load_predictor"]
