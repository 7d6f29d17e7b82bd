"""sparkml_ops.tracking.log_table: Arrow-native bulk logging of metrics and params."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sparkml_ops.tracking import log_table


@pytest.fixture
def client(tracking_uri) -> MlflowClient:
    return MlflowClient(tracking_uri)


@pytest.fixture
def run_id(client) -> str:
    return client.create_run("0").info.run_id


def _points(client, run_id, key):
    return [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_metrics_round_trip_with_nan_and_infinities(client, run_id):
    values = [0.5, float("nan"), float("inf"), float("-inf"), -1.25, 3.0]
    table = pa.table({
        "key": ["loss", "loss", "loss", "acc", "acc", "acc"],
        "value": values,
        "step": [0, 1, 2, 0, 1, 2],
        "timestamp": [1000, 1001, 1002, 2000, 2001, 2002],
    })
    assert log_table(run_id, table) == 6
    for key, rows in (("loss", range(0, 3)), ("acc", range(3, 6))):
        got = _points(client, run_id, key)
        want = [(table["step"][i].as_py(), table["timestamp"][i].as_py(), values[i]) for i in rows]
        assert [g[:2] for g in got] == [w[:2] for w in want]
        assert all(_same(g[2], w[2]) for g, w in zip(got, want, strict=True))
    client._tracking_client.store.flush()  # committed to Delta: the same answer
    assert [p[:2] for p in _points(client, run_id, "loss")] == [(0, 1000), (1, 1001), (2, 1002)]
    assert client.get_run(run_id).data.metrics["acc"] == 3.0  # the latest point (step 2)


def test_defaults_step_zero_and_timestamp_now(client, run_id):
    before = int(time.time() * 1000)
    log_table(run_id, pa.table({"key": ["m"], "value": pa.array([7], pa.int32())}))
    (point,) = client.get_metric_history(run_id, "m")
    assert point.step == 0 and point.value == 7.0
    assert before <= point.timestamp <= int(time.time() * 1000)


def test_a_large_curve_in_one_call_mixed_with_log_metric(client, run_id):
    n = 200_000
    client.log_metric(run_id, "lr", 0.1, step=-1, timestamp=5)
    steps = np.arange(n)
    log_table(run_id, pa.table({"key": pa.array(["lr"] * n).dictionary_encode(), "value": steps / n,
                                "step": steps, "timestamp": steps + 10}))
    history = client.get_metric_history(run_id, "lr")
    assert len(history) == n + 1
    assert [m.step for m in history[:3]] == [-1, 0, 1] and history[-1].value == (n - 1) / n


def test_pandas_frames_for_metrics_and_params(client, run_id):
    frame = pd.DataFrame({"key": pd.Categorical(["f1", "f1", "f2"]), "value": [0.1, 0.2, 0.3], "step": [1, 2, 1]})
    assert log_table(run_id, frame) == 3
    assert [m.value for m in client.get_metric_history(run_id, "f1")] == [0.1, 0.2]
    params = pd.DataFrame({"key": ["alpha", "depth", "flag", "name"], "value": ["0.5", "3", "True", "x y"]})
    assert log_table(run_id, params) == 4
    assert client.get_run(run_id).data.params == {"alpha": "0.5", "depth": "3", "flag": "True", "name": "x y"}


def test_param_numbers_are_logged_as_python_strings(client, run_id):
    log_table(run_id, pa.table({"key": ["a", "b"], "value": [1.0, 2.5]}), kind="params")
    assert client.get_run(run_id).data.params == {"a": "1.0", "b": "2.5"}


def test_params_are_immutable_and_relogging_the_same_value_is_fine(client, run_id, store):
    client.log_param(run_id, "alpha", "0.5")
    log_table(run_id, pa.table({"key": ["alpha", "beta"], "value": ["0.5", "1"]}))
    before = store.lake.read("params").num_rows
    with pytest.raises(MlflowException, match="Changing param values is not allowed.*alpha"):
        log_table(run_id, pa.table({"key": ["gamma", "alpha"], "value": ["2", "0.6"]}))
    assert store.lake.read("params").num_rows == before
    assert client.get_run(run_id).data.params == {"alpha": "0.5", "beta": "1"}


@pytest.mark.parametrize(("table", "kind", "message"), [
    (pa.table({"key": ["ok", "../up"], "value": [1.0, 2.0]}), "auto", "Invalid value"),
    (pa.table({"key": ["ok", None], "value": [1.0, 2.0]}), "auto", "'key' has 1 missing values"),
    (pa.table({"key": ["ok"], "value": ["x"]}), "metrics", "'value' must be numeric"),
    (pa.table({"key": ["ok"], "value": [True]}), "metrics", "'value' must be numeric"),
    (pa.table({"key": ["ok"], "value": [1.0], "step": [1.5]}), "auto", "'step' must hold integers"),
    (pa.table({"key": ["ok"], "value": [1.0], "timestamp": [-3]}), "auto", "negative value -3"),
    (pa.table({"key": ["ok"], "value": pa.array([None], pa.float64())}), "auto", "'value' has 1 missing"),
    (pa.table({"key": [1], "value": [1.0]}), "auto", "'key' must hold strings"),
    (pa.table({"value": [1.0]}), "auto", r"missing \['key'\]"),
    (pa.table({"key": ["ok"], "value": [1.0], "epoch": [1]}), "auto", r"unknown \['epoch'\]"),
    (pa.table({"key": ["a", "a"], "value": ["1", "2"]}), "params", "Duplicate parameter keys"),
    (pa.table({"key": ["a"], "value": ["1"], "step": [1]}), "params", r"unknown \['step'\]"),
    (pa.table({"key": ["a" * 251], "value": ["1"]}), "params", "Param key"),
    (pa.table({"key": ["a"], "value": ["1"]}), "sideways", "kind='sideways'"),
    ([("ok", 1.0)], "auto", "not list"),
])
def test_bad_tables_are_refused_and_write_nothing(store, run_id, table, kind, message):
    before = {name: store.lake.read(name).num_rows for name in ("metrics", "params")}
    with pytest.raises(MlflowException, match=message) as info:
        log_table(run_id, table, kind=kind)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    store.flush()
    assert {name: store.lake.read(name).num_rows for name in ("metrics", "params")} == before


def test_deleted_or_unknown_runs_are_refused(client, run_id, store):
    table = pa.table({"key": ["m"], "value": [1.0]})
    client.delete_run(run_id)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        log_table(run_id, table)
    with pytest.raises(MlflowException, match="not found") as info:
        log_table("0" * 32, table)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert store.lake.read("metrics").num_rows == 0


def test_a_store_that_is_not_delta_is_named(tmp_path, run_id):
    with pytest.raises(MlflowException, match="needs a 'delta:' tracking URI"):
        log_table(run_id, pa.table({"key": ["m"], "value": [1.0]}), tracking_uri=f"sqlite:///{tmp_path}/x.db")


def _log_then_die(uri: str, run_id: str, n: int) -> None:
    os.environ["SPARKML_OPS_FLUSH_INTERVAL_MS"] = "600000"  # nothing commits: only the WAL holds the rows
    from sparkml_ops.tracking import log_table

    steps = np.arange(n)
    log_table(run_id, pa.table({"key": ["bulk"] * n, "value": steps * 0.5, "step": steps}), tracking_uri=uri)
    log_table(run_id, pa.table({"key": ["p"], "value": ["v"]}), tracking_uri=uri)
    os.kill(os.getpid(), signal.SIGKILL)


def test_acknowledged_bulk_rows_survive_sigkill_exactly_once(client, run_id, tracking_uri):
    from sparkml_ops.lake import Lake, parse_root

    client._tracking_client.store.flush()
    child = mp.get_context("spawn").Process(target=_log_then_die, args=(tracking_uri, run_id, 50_000))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    lake = Lake.open(parse_root(tracking_uri))
    assert lake.recover() == 50_001
    assert lake.recover() == 0
    history = client.get_metric_history(run_id, "bulk")
    assert [m.step for m in history] == list(range(50_000))
    assert history[-1].value == 49_999 * 0.5
    assert client.get_run(run_id).data.params == {"p": "v"}


@pytest.mark.spark
def test_a_spark_jobs_per_partition_results(spark, client, run_id):
    frame = spark.range(0, 400, numPartitions=4).selectExpr(
        "concat('partition_', cast(spark_partition_id() as string)) as key", "cast(id as double) / 10 as value",
        "id as step")
    assert log_table(run_id, frame.toArrow()) == 400
    history = client.get_metric_history(run_id, "partition_3")
    assert [m.step for m in history] == list(range(300, 400))
