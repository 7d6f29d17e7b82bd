"""Many writer processes on one root: nothing lost, nothing duplicated."""

from __future__ import annotations

import multiprocessing as mp

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

PROCESSES = 8
RUNS_PER_PROCESS = 100
PARAMS, METRICS, STEPS, TAGS = 20, 10, 50, 5


def _writer(uri: str, worker: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("sweep").experiment_id
    for r in range(RUNS_PER_PROCESS):
        run = client.create_run(experiment_id, run_name=f"w{worker}-r{r}")
        run_id = run.info.run_id
        params = [Param(f"p{i}", f"{worker}-{r}-{i}") for i in range(PARAMS)]
        tags = [RunTag(f"t{i}", str(i)) for i in range(TAGS)]
        metrics = [Metric(f"m{k}", float(worker * 1e6 + r * 1e3 + s), 1_000 + s, s)
                   for k in range(METRICS) for s in range(STEPS)]
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run_id)


@pytest.mark.slow
def test_eight_processes_log_to_one_root_exactly_once(tracking_uri, root):
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).create_experiment("sweep")
    from sparkml_ops.tracking.store import DeltaTrackingStore

    DeltaTrackingStore(tracking_uri).flush()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tracking_uri, w)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0

    def table(name):
        return DeltaTable(str(root / "tables" / name)).to_pyarrow_table()

    runs = table("runs")
    run_ids = pc.unique(runs.column("run_id"))
    assert len(run_ids) == PROCESSES * RUNS_PER_PROCESS
    finished = runs.filter(pc.equal(runs.column("status"), "FINISHED"))
    assert len(pc.unique(finished.column("run_id"))) == PROCESSES * RUNS_PER_PROCESS

    metrics = table("metrics")
    assert metrics.num_rows == PROCESSES * RUNS_PER_PROCESS * METRICS * STEPS
    keys = pc.binary_join_element_wise(metrics.column("run_id"), metrics.column("key"),
                                       pc.cast(metrics.column("step"), "string"), "|")
    assert len(pc.unique(keys)) == metrics.num_rows  # no point twice

    params = table("params")
    assert params.num_rows == PROCESSES * RUNS_PER_PROCESS * PARAMS
    tags = table("tags")
    user_tags = tags.filter(pc.starts_with(tags.column("key"), "t"))
    assert user_tags.num_rows == PROCESSES * RUNS_PER_PROCESS * TAGS

    # and the MLflow client sees every run with all its values
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("sweep").experiment_id
    seen = client.search_runs([experiment_id], max_results=1000)
    assert len(seen) == PROCESSES * RUNS_PER_PROCESS
    assert all(len(r.data.params) == PARAMS and len(r.data.metrics) == METRICS for r in seen)
    sample = seen[0]
    assert len(client.get_metric_history(sample.info.run_id, "m3")) == STEPS
