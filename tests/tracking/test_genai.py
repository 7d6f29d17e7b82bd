"""GenAI reads answer empty, GenAI writes are refused clearly; chart downsampling is MLflow's SQL sample."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.store.entities.paged_list import PagedList

from sparkml_ops.errors import NotSupported
from sparkml_ops.tracking import genai
from sparkml_ops.tracking.history import ntile_sample


def test_genai_reads_are_empty(store):
    assert store.search_traces(experiment_ids=["0"]) == ([], None)
    assert store.batch_get_traces(["tr-1"]) == []
    assert store.list_scorers("0") == []
    assert store.list_gateway_endpoints() == []
    for page in (store.search_datasets(experiment_ids=["0"]), store.query_trace_metrics(["0"], None, "m", []),
                 store.list_review_queues(), store.search_mcp_servers()):
        assert isinstance(page, PagedList) and list(page) == [] and page.token is None
    with pytest.raises(MlflowException) as err:
        store.get_trace_info("tr-123")
    assert err.value.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST) and "tr-123" in err.value.message


# Gateway and MCP-registry calls exist from some MLflow release on (compat.store_interfaces).
@pytest.mark.parametrize("name", [n for n in ("start_trace", "log_spans", "create_assessment", "register_scorer",
                                              "create_dataset", "create_gateway_endpoint", "create_mcp_server",
                                              "deprecated_start_trace_v2") if n in genai.unsupported_names()])
def test_genai_writes_raise_one_clear_400_error(store, name):
    with pytest.raises(NotSupported) as err:
        getattr(store, name)("x")
    message = err.value.message
    assert f"'{name}'" in message and "not supported by the sparkml_ops Delta tracking store" in message
    assert err.value.get_http_status_code() == 400
    assert err.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)


def test_every_unimplemented_genai_method_of_mlflow_is_covered(store):
    from mlflow.store.tracking.abstract_store import AbstractStore

    for name in genai.unsupported_names() + list(genai.EMPTY_READS):
        assert getattr(type(store), name) is not getattr(AbstractStore, name, None), name


def test_search_datasets_lists_the_datasets_runs_logged(store):
    import mlflow
    import pandas as pd

    experiment_id = store.create_experiment("with-data")
    run = mlflow.start_run(experiment_id=experiment_id)
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="train")
    mlflow.log_input(dataset, context="training")
    mlflow.log_input(dataset, context="training")  # logged twice: listed once
    mlflow.end_run()
    summaries = store._search_datasets([experiment_id])
    assert [(s.experiment_id, s.name, s.context) for s in summaries] == [(experiment_id, "train", "training")]
    assert summaries[0].digest == dataset.digest and run.info.run_id
    assert store._search_datasets(["0"]) == []
    other = store.create_experiment("runs-without-data")  # another experiment's datasets are not its own
    mlflow.start_run(experiment_id=other)
    mlflow.end_run()
    assert store._search_datasets([other]) == []


def _sqlite_ntile(n: int, buckets: int) -> list[int]:
    """MLflow's SQL store's sample, computed by SQLite itself: NTILE first rows plus the last row."""
    db = sqlite3.connect(":memory:")
    db.execute("create table m (i integer)")
    db.executemany("insert into m values (?)", [(i,) for i in range(n)])
    rows = [r[0] for r in db.execute(
        "select i from (select i, row_number() over (partition by b order by i) rn from "
        f"(select i, ntile({buckets}) over (order by i) b from m)) where rn = 1 order by i")]
    if rows and rows[-1] != n - 1:
        if len(rows) >= buckets:
            rows[-1] = n - 1
        else:
            rows.append(n - 1)
    return rows


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 3000), buckets=st.integers(1, 400))
def test_downsampling_matches_sql_ntile(n, buckets):
    assert ntile_sample(n, buckets).tolist() == _sqlite_ntile(n, buckets)


def test_bulk_interval_samples_each_run_and_checks_runs(store):
    experiment_id = store.create_experiment("sampled")
    runs = [store.create_run(experiment_id, "u", 0, [], None).info.run_id for _ in range(2)]
    for k, run_id in enumerate(runs):
        for start in range(0, 1000 * (k + 1), 1000):
            store.log_batch(run_id, [Metric("m", float(i), i, i) for i in range(start, start + 1000)], [], [])
        store.log_batch(run_id, [Metric("other", 1.0, 0, i) for i in range(50)], [], [])
    out = store.get_metric_history_bulk_interval(runs, "m", 10, None, None)
    by_run = {r: [m.step for m in out if m.run_id == r] for r in runs}
    assert by_run[runs[0]] == [0, 100, 200, 300, 400, 500, 600, 700, 800, 999]
    assert by_run[runs[1]] == [0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1999]
    assert [m.step for m in store.get_metric_history_bulk_interval(runs[:1], "m", 5, 10, 14)] == [10, 11, 12, 13, 14]
    with pytest.raises(MlflowException, match="start_step=1 and end_step=None"):
        store.get_metric_history_bulk_interval(runs, "m", 10, 1, None)
    with pytest.raises(MlflowException, match="not found"):
        store.get_metric_history_bulk_interval(["0" * 32], "m", 10, None, None)
