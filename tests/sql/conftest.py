"""A tracking root filled through the real mlflow client, shared (read-only) by a test module."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, Metric, Param, RunTag, ViewType


@contextlib.contextmanager
def using(uri: str):
    """Point mlflow at ``uri`` for a block, then restore what was set before."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(previous)


def flush(uri: str) -> None:
    """Commit everything this process logged to ``uri`` (writes are group-committed in the background)."""
    from sparkml_ops.tracking.store import DeltaTrackingStore

    DeltaTrackingStore(uri).flush()


def close(uri: str) -> None:
    from sparkml_ops.lake import Lake, parse_root

    lake = Lake.opened(parse_root(uri))
    if lake is not None:
        lake.close()


def populate(uri: str, data_dir: Path) -> dict[str, str]:
    """Two experiments, six runs covering the corner cases the views must get right; run name -> id."""
    ids: dict[str, str] = {}
    with using(uri) as client:
        ctr = client.create_experiment("ctr-model", tags={"team": "ads"})
        other = client.create_experiment("other")

        def run(name: str, experiment: str, params: dict, metrics: list[tuple], tags: dict | None = None) -> str:
            run_id = client.create_run(experiment, run_name=name, start_time=1_000 + len(ids)).info.run_id
            client.log_batch(run_id, metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
                             params=[Param(k, str(v)) for k, v in params.items()],
                             tags=[RunTag(k, v) for k, v in (tags or {}).items()])
            ids[name] = run_id
            return run_id

        # latest auc is step 2 although step 1 was logged last
        a = run("a", ctr, {"lr": 0.1, "layers": 2, "opt": "adam"},
                [("auc", 0.60, 10, 0), ("auc", 0.70, 30, 2), ("auc", 0.65, 40, 1),
                 ("loss", 0.9, 10, 0), ("loss", 0.5, 20, 1), ("loss", 0.4, 30, 2)],
                {"team": "x", "note": "temporary"})
        client.delete_tag(a, "note")
        client.set_terminated(a, "FINISHED", end_time=5_000)
        # a higher step wins over a later timestamp; a NaN metric
        b = run("b", ctr, {"lr": 0.01, "layers": 3, "opt": "adam"},
                [("auc", 0.80, 1_000, 5), ("auc", 0.90, 2_000, 3), ("weird", math.nan, 5, 0),
                 ("loss", 0.3, 10, 0)], {"team": "y"})
        client.set_terminated(b, "FINISHED", end_time=6_000)
        # same step and timestamp: the larger value wins
        c = run("c", ctr, {"lr": 0.5, "layers": 3, "opt": "sgd"},
                [("auc", 0.75, 7, 1), ("auc", 0.74, 7, 1), ("weird", 1.5, 5, 0)])
        client.set_terminated(c, "FAILED", end_time=7_000)
        run("d", ctr, {}, [])  # still running, no params or metrics: NULL maps
        e = run("e", ctr, {"lr": 1.0}, [("auc", 0.99, 5, 0)], {"team": "x"})
        client.delete_run(e)
        f = run("f", other, {"lr": 0.3}, [("auc", 0.5, 5, 0)], {"team": "z"})
        client.set_terminated(f, "FINISHED", end_time=8_000)

        model = client.create_logged_model(ctr, name="clf", source_run_id=a)
        client.log_outputs(a, [LoggedModelOutput(model.model_id, 2)])
        data = data_dir / "train.parquet"
        pq.write_table(pa.table({"x": [1, 2, 3], "y": [0.0, 1.0, 0.0]}), data)
        from sparkml_ops.lineage import log_input

        log_input(str(data), name="train", run_id=a)
        _register(client, a, model.model_id)
    flush(uri)
    return ids


def _register(client: MlflowClient, run_id: str, model_id: str) -> None:
    """Registry corner cases: a rename, a deleted version, a moved and a deleted alias, a deleted
    model, deleted tags; what is left is 1 model, 2 versions, 1 alias, 1 model tag, 1 version tag."""
    client.create_registered_model("draft", tags={"team": "ads"})
    for i in range(3):
        client.create_model_version("draft", f"/models/{i}", run_id=run_id, tags={"i": str(i)},
                                    model_id=model_id if i == 0 else None)
    client.set_registered_model_alias("draft", "champion", 1)
    client.set_registered_model_alias("draft", "champion", 3)
    client.set_registered_model_alias("draft", "old", 2)
    client.delete_model_version("draft", 2)  # takes alias 'old' with it
    client.delete_model_version_tag("draft", 3, "i")
    client.set_registered_model_tag("draft", "gone", "x")
    client.delete_registered_model_tag("draft", "gone")
    client.rename_registered_model("draft", "clf")
    client.create_registered_model("scratch")
    client.create_model_version("scratch", "/models/scratch")
    client.delete_registered_model("scratch")


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """(root path, tracking URI, run name -> run id) of a populated root, shared by one module."""
    base = tmp_path_factory.mktemp("sqlroot")
    root = base / "lake"
    uri = f"delta:{root}"
    ids = populate(uri, base)
    yield str(root), uri, ids
    close(uri)


def search_all(uri: str):
    """Every run of every experiment, through the stock mlflow API."""
    with using(uri) as client:
        experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        return mlflow.search_runs(experiment_ids=experiments, run_view_type=ViewType.ALL, output_format="list",
                                  max_results=1000)


def as_dict(value) -> dict | None:
    """Arrow maps arrive as lists of (key, value) pairs."""
    if value is None:
        return None
    return dict(value) if not isinstance(value, dict) else value

