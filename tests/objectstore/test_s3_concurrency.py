"""Four writer processes on one ``s3://`` root at once: S3 conditional writes keep every commit.

The four start together (a barrier) and open a fresh root at once, so its tables are created
racing; then each creates an experiment and runs, logs batches through the stock MLflow
client and commits after every run, so their commits race for the same table versions.
Afterwards every row is there exactly once, read both with plain delta-rs and through MLflow.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from tests.objectstore.conftest import server_stats

PROCESSES = 4
RUNS, METRICS, STEPS, PARAMS = 4, 3, 20, 4


def _writer(uri: str, worker: int, barrier) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from sparkml_ops.tracking.store import DeltaTrackingStore

    barrier.wait(timeout=120)
    client = MlflowClient(uri)  # all four open the fresh root at once: its tables are created racing
    store = DeltaTrackingStore(uri)
    experiment_id = client.create_experiment(f"race-{worker}")
    store.flush()
    for r in range(RUNS):
        run_id = client.create_run(experiment_id, run_name=f"w{worker}-r{r}").info.run_id
        for half in (0, 1):  # two batches per run: more commits racing
            metrics = [Metric(f"m{k}", float(worker * 1000 + r * 100 + s), 1_000 + s, s)
                       for k in range(METRICS) for s in range(half * STEPS // 2, (half + 1) * STEPS // 2)]
            client.log_batch(run_id, metrics=metrics,
                             params=[Param(f"p{i}", str(worker)) for i in range(half * PARAMS // 2,
                                                                                 (half + 1) * PARAMS // 2)])
        client.set_terminated(run_id)
        store.flush()  # one group commit per run and table: the writers' commits race run by run


@pytest.mark.slow
def test_four_processes_commit_to_one_s3_root_exactly_once(s3_root, s3_endpoint, capsys):
    from mlflow import MlflowClient

    from sparkml_ops.lake import Lake, parse_root

    before = server_stats(s3_endpoint)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    procs = [ctx.Process(target=_writer, args=(s3_root, w, barrier)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0

    location = parse_root(s3_root, json.loads(os.environ["SPARKML_OPS_STORAGE_OPTIONS"]))
    assert Lake._open.get(location) is None  # this process opens the root only now, to check it
    assert location.storage_options["conditional_put"] == "etag"

    def table(name):
        return DeltaTable(location.table_uri(name), storage_options=location.storage_options)

    total_runs = PROCESSES * RUNS
    runs = table("runs").to_pyarrow_table()
    assert len(pc.unique(runs.column("run_id"))) == total_runs
    finished = runs.filter(pc.equal(runs.column("status"), "FINISHED"))
    assert len(pc.unique(finished.column("run_id"))) == total_runs
    metrics_table = table("metrics")
    metrics = metrics_table.to_pyarrow_table()
    assert metrics.num_rows == total_runs * METRICS * STEPS
    keys = pc.binary_join_element_wise(metrics.column("run_id"), metrics.column("key"),
                                       pc.cast(metrics.column("step"), "string"), "|")
    assert len(pc.unique(keys)) == metrics.num_rows  # no point twice
    assert table("params").to_pyarrow_table().num_rows == total_runs * PARAMS
    # every commit file went to S3 as a conditional write (If-None-Match), so a racing writer
    # that lost got 412 and retried on the next version instead of overwriting
    after = server_stats(s3_endpoint)
    commits = sum(len(table(name).history()) for name in ("runs", "metrics", "params"))
    assert after["conditional_puts"] - before["conditional_puts"] >= commits
    with capsys.disabled():
        print(f"\n{PROCESSES} S3 writers: {after['precondition_failed'] - before['precondition_failed']} "
              f"commit races lost and retried (412), {commits} commits to runs/metrics/params")

    client = MlflowClient(s3_root)
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    assert {f"race-{w}" for w in range(PROCESSES)} <= set(experiments)
    seen = client.search_runs([experiments[f"race-{w}"] for w in range(PROCESSES)], max_results=1000)
    assert len(seen) == total_runs
    assert {r.data.params["p0"] for r in seen if r.info.experiment_id == experiments["race-2"]} == {"2"}
    assert all(len(r.data.params) == PARAMS and len(r.data.metrics) == METRICS for r in seen)
    assert len(client.get_metric_history(seen[0].info.run_id, "m1")) == STEPS
