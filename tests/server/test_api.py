"""MLflow's stock client and raw HTTP against a real ``sparkml-ops server`` process."""

from __future__ import annotations

import json
import time

import mlflow
import pytest
import requests
from mlflow.entities import Metric, Param, RunTag


def test_tracking_and_artifacts_round_trip_through_http(client, server, server_root, tmp_path):
    experiment_id = client.create_experiment("http-round-trip")
    experiment = client.get_experiment(experiment_id)
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    run = client.create_run(experiment_id, run_name="first")
    run_id = run.info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(20)],
                     params=[Param("lr", "0.1")], tags=[RunTag("team", "ml")])
    (tmp_path / "notes.txt").write_text("hello over http")
    client.log_artifact(run_id, str(tmp_path / "notes.txt"), "docs")
    client.set_terminated(run_id)

    got = client.get_run(run_id)
    assert got.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    assert got.data.params == {"lr": "0.1"} and got.data.tags["team"] == "ml"
    assert got.data.metrics["loss"] == pytest.approx(1 / 20)
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(20))
    assert [f.path for f in client.list_artifacts(run_id, "docs")] == ["docs/notes.txt"]
    local = client.download_artifacts(run_id, "docs/notes.txt", str(tmp_path / "down"))
    with open(local) as handle:
        assert handle.read() == "hello over http"
    found = client.search_runs([experiment_id], "params.lr = '0.1' and metrics.loss < 0.1",
                               order_by=["start_time DESC"])
    assert [r.info.run_id for r in found] == [run_id]

    # The bytes live in the root's Delta artifact tables, under the run's stored delta-artifacts: URI.
    from sparkml_ops.lake import parse_root
    from sparkml_ops.tracking.artifact_repo import DeltaArtifactRepository
    from sparkml_ops.tracking.artifact_uri import default_artifact_root

    stored = f"{default_artifact_root(parse_root(f'delta:{server_root}'))}/{experiment_id}/{run_id}/artifacts"
    assert [f.path for f in DeltaArtifactRepository(stored).list_artifacts("docs")] == ["docs/notes.txt"]


def test_fluent_log_model_and_logged_models_over_http(client, server):
    import numpy as np
    from sklearn.linear_model import LinearRegression

    mlflow.set_experiment("http-models")
    with mlflow.start_run() as run:
        model = LinearRegression().fit(np.arange(10).reshape(-1, 1), np.arange(10))
        info = mlflow.sklearn.log_model(model, name="model")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert loaded.predict(np.array([[3.0]]))[0] == pytest.approx(3.0)
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [m.model_id for m in models] == [info.model_id]
    assert models[0].artifact_location.startswith("mlflow-artifacts:/")


def test_genai_reads_answer_empty_and_writes_are_a_clear_400(client, server):
    experiment_id = client.create_experiment("genai-empty")
    assert client.search_traces(locations=[experiment_id]) == []
    answers = {
        "search traces v3": requests.post(f"{server.url}/api/3.0/mlflow/traces/search", json={
            "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}]}),
        "search evaluation datasets": requests.post(f"{server.url}/api/3.0/mlflow/datasets/search",
                                                    json={"experiment_ids": [experiment_id]}),
        "list scorers": requests.get(f"{server.url}/api/3.0/mlflow/scorers/list",
                                     params={"experiment_id": experiment_id}),
        "dataset summaries": requests.post(f"{server.url}/ajax-api/2.0/mlflow/experiments/search-datasets",
                                           json={"experiment_ids": [experiment_id]}),
    }
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert all(not v for v in response.json().values()), (name, response.text)
    legacy = requests.post(f"{server.url}/api/2.0/mlflow/traces", json={"experiment_id": experiment_id})
    assert legacy.status_code == 400, legacy.text
    assert "not supported by the sparkml_ops Delta tracking store" in legacy.json()["message"]


def test_bulk_interval_answers_a_downsampled_100k_step_history(client, server):
    experiment_id = client.create_experiment("long-history")
    run_id = client.create_run(experiment_id).info.run_id
    for start in range(0, 100_000, 1000):
        client.log_batch(run_id, metrics=[Metric("acc", (i % 997) / 997, 1_700_000_000_000 + i, i)
                                          for i in range(start, start + 1000)])
    url = f"{server.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    params = {"run_ids": run_id, "metric_key": "acc", "max_results": 320}
    elapsed = []
    for _ in range(5):
        began = time.perf_counter()
        response = requests.get(url, params=params)
        elapsed.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
    steps = [m["step"] for m in response.json()["metrics"]]
    assert len(steps) == 320 and steps[0] == 0 and steps[-1] == 99_999 and steps == sorted(steps)
    gaps = {b - a for a, b in zip(steps, steps[1:-1], strict=False)}
    assert gaps <= {312, 313}, gaps  # evenly spread NTILE buckets, not the first 320 rows
    window = requests.get(url, params={**params, "start_step": 1000, "end_step": 1999, "max_results": 10}).json()
    assert [m["step"] for m in window["metrics"]] == [1000 + 100 * i for i in range(9)] + [1999]
    print(f"bulk-interval 100k steps: median {sorted(elapsed)[2] * 1000:.0f} ms")


def test_artifact_paths_escaping_the_run_are_refused(client, server, server_root):
    experiment_id = client.create_experiment("escapes")
    run_id = client.create_run(experiment_id).info.run_id
    base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts"
    for bad in ("../../../etc/passwd", f"{experiment_id}/{run_id}/artifacts/../../../../x", "%2e%2e/%2e%2e/x"):
        put = requests.put(f"{base}/{bad}", data=b"evil")
        assert 400 <= put.status_code < 500, (bad, put.status_code, put.text)
        get = requests.get(f"{base}/{bad}")
        assert 400 <= get.status_code < 500, (bad, get.status_code)
    for bad in ("../../etc/passwd", "/etc/passwd", "a/../../b"):
        response = requests.get(f"{server.url}/get-artifact", params={"path": bad, "run_uuid": run_id})
        assert 400 <= response.status_code < 500, (bad, response.status_code)
        listing = requests.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": bad})
        assert 400 <= listing.status_code < 500, (bad, listing.status_code)
    assert client.list_artifacts(run_id) == []
    assert not list(server_root.parent.glob("**/passwd")) and not (server_root.parent / "x").exists()


def test_oversized_request_bodies_are_refused_before_reading(client, server):
    run_id = client.create_run("0").info.run_id
    huge = json.dumps({"run_id": run_id, "params": [{"key": "k", "value": "v" * (65 * 1024 * 1024)}]})
    response = requests.post(f"{server.url}/api/2.0/mlflow/runs/log-batch", data=huge,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "larger than the server's limit" in response.json()["message"]
    assert client.get_run(run_id).data.params == {}


def test_remote_upload_and_download_of_a_300_mb_file_with_bounded_server_memory(client, server, tmp_path):
    import hashlib

    import psutil

    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as out:
        for i in range(300):
            block = hashlib.sha256(str(i).encode()).digest() * 32768  # 1 MiB, not compressible to nothing
            digest.update(block)
            out.write(block)
    server_process = psutil.Process(server.process.pid)
    before = server_process.memory_info().rss
    peak = [before]

    def sample() -> None:
        while not done.is_set():
            peak.append(server_process.memory_info().rss)
            done.wait(0.2)

    import threading

    done = threading.Event()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run_id = client.create_run("0").info.run_id
        client.log_artifact(run_id, str(big), "data")
        local = client.download_artifacts(run_id, "data/big.bin", str(tmp_path / "down"))
    finally:
        done.set()
        sampler.join()
    received = hashlib.sha256()
    with open(local, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            received.update(chunk)
    assert received.hexdigest() == digest.hexdigest()
    growth_mb = (max(peak) - before) / 2**20
    print(f"server RSS growth during 300 MB upload+download: {growth_mb:.0f} MB")
    assert growth_mb < 200, growth_mb
