"""Validation identical to MLflow's FileStore: same error codes, and a refused call changes nothing.

Each case runs the same call against our store and against MLflow's FileStore holding the
same experiment and runs; the outcome (``None`` or the MLflow error code) must agree, and
every table under our root must hold exactly the rows it held before a refused call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from mlflow.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException

from sparkml_ops.errors import NotSupported
from sparkml_ops.lake import TABLES, Lake, parse_root
from sparkml_ops.tracking.store import DeltaTrackingStore

MISSING_RUN = "0" * 31 + "1"


@dataclass
class Side:
    store: Any
    experiment_id: str
    run_id: str  # active, RUNNING, with param p=1, metric m and tag t
    finished_run_id: str
    deleted_run_id: str
    deleted_experiment_id: str


def _side(store) -> Side:
    experiment_id = store.create_experiment("validation", tags=[ExperimentTag("k", "v")])
    gone_experiment = store.create_experiment("gone")
    store.delete_experiment(gone_experiment)
    run_id = store.create_run(experiment_id, "u", 1_000, [], "live").info.run_id
    store.log_batch(run_id, metrics=[Metric("m", 1.0, 5, 0)], params=[Param("p", "1")], tags=[RunTag("t", "x")])
    finished = store.create_run(experiment_id, "u", 1_000, [], "done").info.run_id
    store.update_run_info(finished, RunStatus.FINISHED, 2_000, None)
    deleted = store.create_run(experiment_id, "u", 1_000, [], "deleted").info.run_id
    store.delete_run(deleted)
    return Side(store, experiment_id, run_id, finished, deleted, gone_experiment)


@pytest.fixture
def sides(store, file_store):
    return _side(store), _side(file_store)


@pytest.fixture(scope="module")
def shared_sides(tmp_path_factory):
    """One pair for the whole case table: each case checks its own before/after state."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.store.tracking.file_store import FileStore

        base = tmp_path_factory.mktemp("validation")
        uri = f"delta:{base / 'lake'}"
        pair = _side(DeltaTrackingStore(uri)), _side(FileStore(str(base / "mlruns"), str(base / "artifacts")))
        yield pair
        Lake.opened(parse_root(uri)).close()


def _row_counts(store: DeltaTrackingStore) -> dict[str, int]:
    return {name: store.lake.read(name).num_rows for name in TABLES}


def _outcome(call, side: Side):
    try:
        call(side)
    except MlflowException as exc:
        return exc.error_code
    except Exception as exc:  # FileStore raises a few bare exceptions
        return type(exc).__name__
    return None


def _check(sides, call, expected):
    """Same outcome in both stores; a refused call leaves every table of ours untouched."""
    ours, ref = sides
    expected_code, reference_code = expected if isinstance(expected, tuple) else (expected, expected)
    before = _row_counts(ours.store), _state(ours)
    got, reference = _outcome(call, ours), _outcome(call, ref)
    assert (got, reference) == (expected_code, reference_code)
    if expected_code is not None:
        assert (_row_counts(ours.store), _state(ours)) == before
        run = ours.store.get_run(ours.run_id)
        assert run.data.params["p"] == "1" and run.data.metrics["m"] == 1.0 and run.data.tags["t"] == "x"


def _state(side: Side) -> str:
    """Everything the store reports about the side's runs and experiments."""
    runs = [side.store.get_run(r).to_dictionary() for r in (side.run_id, side.finished_run_id, side.deleted_run_id)]
    experiments = [dict(e) for e in side.store.search_experiments(ViewType.ALL)]
    return repr((runs, experiments))


INVALID = "INVALID_PARAMETER_VALUE"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"

CASES = {
    # key and value limits
    "param key too long": (lambda s: s.store.log_param(s.run_id, Param("k" * 251, "v")), INVALID),
    "param key at limit": (lambda s: s.store.log_param(s.run_id, Param("k" * 250, "v")), None),
    "param value at limit": (lambda s: s.store.log_param(s.run_id, Param("q", "v" * 6000)), None),
    "tag value at limit": (lambda s: s.store.set_tag(s.run_id, RunTag("t2", "v" * 8000)), None),
    "metric key too long": (lambda s: s.store.log_metric(s.run_id, Metric("m" * 251, 1.0, 1, 0)), INVALID),
    "metric key with ..": (lambda s: s.store.log_metric(s.run_id, Metric("../m", 1.0, 1, 0)), INVALID),
    "param key with bad char": (lambda s: s.store.log_param(s.run_id, Param("a\nb", "v")), INVALID),
    "tag key absolute path": (lambda s: s.store.set_tag(s.run_id, RunTag("/abs", "v")), INVALID),
    "empty param key": (lambda s: s.store.log_param(s.run_id, Param("", "v")), INVALID),
    "experiment tag too long": (
        lambda s: s.store.set_experiment_tag(s.experiment_id, ExperimentTag("k", "v" * 20001)), INVALID),
    # metric values
    "metric None": (lambda s: s.store.log_metric(s.run_id, Metric("m2", None, 1, 0)), INVALID),
    "metric string": (lambda s: s.store.log_metric(s.run_id, Metric("m2", "1.0", 1, 0)), INVALID),
    "metric bool": (lambda s: s.store.log_metric(s.run_id, Metric("m2", True, 1, 0)), INVALID),
    "metric timestamp None": (lambda s: s.store.log_metric(s.run_id, Metric("m2", 1.0, None, 0)), INVALID),
    "metric step string": (lambda s: s.store.log_metric(s.run_id, Metric("m2", 1.0, 1, "1")), INVALID),
    "metric NaN": (lambda s: s.store.log_metric(s.run_id, Metric("m2", float("nan"), 1, 0)), None),
    "metric +inf": (lambda s: s.store.log_metric(s.run_id, Metric("m2", math.inf, 1, 0)), None),
    "metric -inf": (lambda s: s.store.log_metric(s.run_id, Metric("m2", -math.inf, 1, 0)), None),
    "metric int": (lambda s: s.store.log_metric(s.run_id, Metric("m2", 3, 1, 0)), None),
    # params are immutable
    "same param value again": (lambda s: s.store.log_param(s.run_id, Param("p", "1")), None),
    "different param value": (lambda s: s.store.log_param(s.run_id, Param("p", "2")), INVALID),
    # FileStore wraps every log_batch failure as INTERNAL_ERROR; MLflow's SQL store (and we)
    # keep INVALID_PARAMETER_VALUE, which maps to HTTP 400 rather than 500.
    "different param value in batch": (
        lambda s: s.store.log_batch(s.run_id, [Metric("m3", 1.0, 1, 0)], [Param("p", "2")], [RunTag("t3", "y")]),
        (INVALID, "INTERNAL_ERROR")),
    "duplicate keys in one batch": (
        lambda s: s.store.log_batch(s.run_id, [], [Param("z", "1"), Param("z", "2")], []), INVALID),
    "batch too many params": (
        lambda s: s.store.log_batch(s.run_id, [], [Param(f"k{i}", "v") for i in range(101)], []), INVALID),
    "batch too many metrics": (
        lambda s: s.store.log_batch(s.run_id, [Metric("x", 1.0, 1, i) for i in range(1001)], [], []), INVALID),
    "batch with one bad metric": (
        lambda s: s.store.log_batch(s.run_id, [Metric("ok", 1.0, 1, 0), Metric("bad", None, 1, 0)], [], []),
        INVALID),
    # unknown ids
    "log to unknown run": (lambda s: s.store.log_metric(MISSING_RUN, Metric("m", 1.0, 1, 0)), NOT_FOUND),
    "get unknown run": (lambda s: s.store.get_run(MISSING_RUN), NOT_FOUND),
    "malformed run id": (lambda s: s.store.get_run("../etc"), INVALID),
    "history of unknown run": (lambda s: s.store.get_metric_history(MISSING_RUN, "m"), NOT_FOUND),
    "get unknown experiment": (lambda s: s.store.get_experiment("123456789"), NOT_FOUND),
    "run in unknown experiment": (lambda s: s.store.create_run("123456789", "u", 1, [], "r"), NOT_FOUND),
    "rename unknown experiment": (lambda s: s.store.rename_experiment("123456789", "x"), NOT_FOUND),
    "delete tag not set": (lambda s: s.store.delete_tag(s.run_id, "nope"), NOT_FOUND),
    # run and experiment lifecycle
    "log to deleted run": (lambda s: s.store.log_param(s.deleted_run_id, Param("a", "b")), INVALID),
    "tag deleted run": (lambda s: s.store.set_tag(s.deleted_run_id, RunTag("a", "b")), INVALID),
    "inputs to deleted run": (lambda s: s.store.log_inputs(s.deleted_run_id, [_dataset()]), INVALID),
    "update deleted run": (
        lambda s: s.store.update_run_info(s.deleted_run_id, RunStatus.FINISHED, 5, None), INVALID),
    "log to finished run": (lambda s: s.store.log_metric(s.finished_run_id, Metric("late", 2.0, 1, 0)), None),
    "param to finished run": (lambda s: s.store.log_param(s.finished_run_id, Param("late", "x")), None),
    "duplicate experiment name": (lambda s: s.store.create_experiment("validation"), EXISTS),
    "name of a deleted experiment": (lambda s: s.store.create_experiment("gone"), EXISTS),
    "empty experiment name": (lambda s: s.store.create_experiment(""), INVALID),
    "experiment name not a string": (lambda s: s.store.create_experiment(7), INVALID),
    "rename to taken name": (lambda s: s.store.rename_experiment(s.experiment_id, "gone"), EXISTS),
    "run_name clashes with tag": (
        lambda s: s.store.create_run(s.experiment_id, "u", 1, [RunTag("mlflow.runName", "a")], "b"), INVALID),
    "tag on deleted experiment": (
        lambda s: s.store.set_experiment_tag(s.deleted_experiment_id, ExperimentTag("a", "b")), INVALID),
    "search unknown experiment": (lambda s: s.store.search_runs(["123456789"], None, ViewType.ALL), None),
    "delete unknown run": (lambda s: s.store.delete_run(MISSING_RUN), NOT_FOUND),
    "delete deleted run": (lambda s: s.store.delete_run(s.deleted_run_id), None),
    "restore active run": (lambda s: s.store.restore_run(s.run_id), None),
    "delete deleted experiment": (lambda s: s.store.delete_experiment(s.deleted_experiment_id), NOT_FOUND),
    "restore active experiment": (lambda s: s.store.restore_experiment(s.experiment_id), NOT_FOUND),
    "delete missing experiment tag": (lambda s: s.store.delete_experiment_tag(s.experiment_id, "nope"), NOT_FOUND),
    "update finished run": (lambda s: s.store.update_run_info(s.finished_run_id, RunStatus.FAILED, 7, "x"), None),
    "empty batch": (lambda s: s.store.log_batch(s.run_id, [], [], []), None),
    "history of unknown key": (lambda s: s.store.get_metric_history(s.run_id, "nope"), None),
    "no inputs": (lambda s: s.store.log_inputs(s.run_id, None), None),
    "metric with unknown model": (
        lambda s: s.store.log_metric(s.run_id, Metric("mm", 1.0, 1, 0, model_id="m-nope")), None),
    # Where FileStore is an outlier, we follow MLflow's SQL store (ours, FileStore):
    # it refuses to delete the default experiment with INTERNAL_ERROR (a 500); we say 400.
    "delete default experiment": (lambda s: s.store.delete_experiment("0"), (INVALID, "INTERNAL_ERROR")),
    # it says INVALID_STATE; the SQL store says INVALID_PARAMETER_VALUE.
    "run in deleted experiment": (
        lambda s: s.store.create_run(s.deleted_experiment_id, "u", 1, [], "r"), (INVALID, "INVALID_STATE")),
    # it raises a bare Exception; the SQL store says INVALID_STATE.
    "rename deleted experiment": (
        lambda s: s.store.rename_experiment(s.deleted_experiment_id, "zz"), ("INVALID_STATE", "Exception")),
    # it skips dataset validation; the SQL store checks MLflow's limits, as we do.
    "dataset name too long": (
        lambda s: s.store.log_inputs(s.run_id, [DatasetInput(Dataset("d" * 501, "abc", "local", "{}"), [])]),
        (INVALID, None)),
    "search with bad max_results": (
        lambda s: s.store.search_experiments(ViewType.ALL, max_results=0), INVALID),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_outcome_as_file_store(shared_sides, name):
    call, expected = CASES[name]
    _check(shared_sides, call, expected)


def _dataset() -> DatasetInput:
    dataset = Dataset(name="d", digest="abc", source_type="local", source="{}")
    return DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])


def test_nan_and_inf_stored_like_file_store(sides):
    ours, ref = sides
    values = [float("nan"), math.inf, -math.inf, 0.0, -0.0, 1e308, 5e-324]
    for side in sides:
        side.store.log_batch(side.run_id, [Metric("v", x, 10 + i, i) for i, x in enumerate(values)], [], [])
    got = [m.value for m in ours.store.get_metric_history(ours.run_id, "v")]
    expected = [m.value for m in ref.store.get_metric_history(ref.run_id, "v")]
    assert repr(got) == repr(expected)
    assert math.isnan(got[0]) and got[1:3] == [math.inf, -math.inf]
    assert ours.store.get_run(ours.run_id).data.metrics["v"] == 5e-324


def test_metric_history_order_matches_file_store(sides):
    """Steps logged out of order come back in logging (timestamp) order, as in MLflow's stores."""
    points = [(3, 10, 0.3), (1, 20, 0.1), (2, 30, 0.2), (2, 40, 0.25), (0, 50, 0.0)]
    for side in sides:
        for step, timestamp, value in points:
            side.store.log_metric(side.run_id, Metric("ordered", value, timestamp, step))
    ours, ref = ([(m.step, m.timestamp, m.value) for m in s.store.get_metric_history(s.run_id, "ordered")]
                 for s in sides)
    assert ours == ref == points
    bulk = sides[0].store.get_metric_history_bulk_interval_from_steps(sides[0].run_id, "ordered", [0, 2, 3], 3)
    assert [(m.step, m.timestamp) for m in bulk] == [(0, 50), (2, 30), (2, 40)]
    assert sides[0].store.get_run(sides[0].run_id).data.metrics["ordered"] == 0.3  # latest = max step


def test_logging_to_finished_run_keeps_it_finished(sides):
    for side in sides:
        side.store.log_metric(side.finished_run_id, Metric("late", 2.0, 1, 0))
    ours, ref = (s.store.get_run(s.finished_run_id) for s in sides)
    assert ours.info.status == ref.info.status == "FINISHED"
    assert ours.data.metrics == ref.data.metrics == {"late": 2.0}


def test_long_param_and_tag_values_are_truncated_like_file_store(sides):
    """MLflow truncates over-long param/tag values (MLFLOW_TRUNCATE_LONG_VALUES, on by default)."""
    for side in sides:
        side.store.log_param(side.run_id, Param("long", "v" * 6001))
        side.store.log_batch(side.run_id, [], [], [RunTag("long", "w" * 8001)])
    ours, ref = (s.store.get_run(s.run_id).data for s in sides)
    assert ours.params["long"] == ref.params["long"] == "v" * 6000
    assert ours.tags["long"] == ref.tags["long"] == "w" * 8000
    # FileStore.set_tag skips the value check altogether; ours applies it as MLflow's SQL store does
    sides[0].store.set_tag(sides[0].run_id, RunTag("long2", "w" * 8001))
    assert sides[0].store.get_run(sides[0].run_id).data.tags["long2"] == "w" * 8000


def test_long_values_are_refused_when_truncation_is_off(sides, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    _check(sides, lambda s: s.store.log_param(s.run_id, Param("q", "v" * 6001)), INVALID)
    _check(sides, lambda s: s.store.log_batch(s.run_id, [], [], [RunTag("q", "v" * 8001)]), INVALID)
    _check(sides, lambda s: s.store.set_tag(s.run_id, RunTag("q", "v" * 8001)), (INVALID, None))


def test_invalid_search_filters_fail_even_with_no_runs(store, file_store):
    """Parse errors fail in both stores; comparator errors (``>`` on a param) fail in ours even
    when no run exists to compare, as in MLflow's SQL store (FileStore only checks per run)."""
    for target, filters in ((store, ("params.p > '1'", "metrics.m LIKE '1%'", "nonsense")),
                            (file_store, ("metrics.m LIKE '1%'", "nonsense"))):
        experiment_id = target.create_experiment("empty")
        for filter_string in filters:
            with pytest.raises(MlflowException) as err:
                target.search_runs([experiment_id], filter_string, ViewType.ALL)
            assert err.value.error_code == INVALID
        with pytest.raises(MlflowException) as err:
            target.search_runs([experiment_id], None, ViewType.ALL, order_by=["metrics.m SIDEWAYS"])
        assert err.value.error_code == INVALID


@pytest.mark.parametrize("method, args", [
    ("start_trace", (None,)),
    ("set_trace_tag", ("tr-1", "k", "v")),
    ("create_assessment", ("a",)),
    ("register_scorer", ("0", "s", "{}")),
    ("create_dataset", ("d",)),
])
def test_genai_methods_are_clearly_not_supported(store, method, args):
    with pytest.raises(NotSupported) as err:
        getattr(store, method)(*args)
    message = str(err.value)
    assert method in message and "not supported by the sparkml_ops Delta tracking store" in message
    assert err.value.error_code == INVALID
