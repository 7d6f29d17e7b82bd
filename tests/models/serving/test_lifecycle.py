"""Model URI forms, SIGTERM graceful shutdown and several workers, with real servers on 127.0.0.1."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import mlflow
import pytest

from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.models.resolve import resolve_model
from tests.models.serving.conftest import flush_store, log_lr, start_server, training_frame


def test_every_model_uri_form_resolves_to_the_same_model(tracking_uri, tmp_path):
    """The forms ``models serve -m`` takes (resolution is shared with spark_udf)."""
    with mlflow.start_run() as run:
        info = log_lr()
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "copy"))
    for uri in [info.model_uri, f"runs:/{run.info.run_id}/model", run.info.run_id, local, f"file://{local}"]:
        source = resolve_model(uri)
        assert (Path(source.path) / "MLmodel").is_file(), uri
        assert (source.model_id, source.run_id) == (info.model_id, run.info.run_id), uri

    (tmp_path / "empty-dir").mkdir()
    for bad, error in ((" ", BadInput), (str(tmp_path / "nothing-here"), BadInput),
                       (str(tmp_path / "empty-dir"), BadInput), ("0" * 32, NotFound),
                       ("models:/m-" + "0" * 32, NotFound)):
        with pytest.raises(error):
            resolve_model(bad)
    with mlflow.start_run() as two:
        log_lr("first")
        log_lr("second")
    with pytest.raises(BadInput, match="2 models"):
        resolve_model(two.info.run_id)


def test_bad_model_uri_fails_the_command_with_a_clear_message(tracking_uri, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "sparkml_ops.cli", "models", "serve", "-m", str(tmp_path / "missing"),
                           "--root", tracking_uri, "--port", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "missing" in done.stderr and "MLmodel" in done.stderr, done.stderr[-2000:]


@pytest.mark.slow
def test_sigterm_lets_in_flight_requests_finish(tracking_uri, tmp_path):
    """Requests held in the micro-batcher (1.5 s max wait) when SIGTERM arrives still get answers."""
    with mlflow.start_run() as run:
        info = log_lr()
    flush_store()
    expected = mlflow.pyfunc.load_model(info.model_uri).predict(training_frame(rows=3, seed=5)[0]).tolist()
    rows = training_frame(rows=3, seed=5)[0]
    server = start_server(run.info.run_id, tracking_uri, tmp_path, "--max-wait-ms", "1500",
                          "--max-batch-rows", "100000")
    try:
        assert httpx.get(server.url + "/metadata").json()["model_id"] == info.model_id
        answers: dict[int, httpx.Response] = {}

        def call(i: int) -> None:
            body = {"dataframe_records": rows.iloc[[i]].to_dict(orient="records")}
            answers[i] = httpx.post(server.url + "/invocations", json=body, timeout=30)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/metadata").json()["requests"] < 3:
            assert time.monotonic() < deadline, "requests never reached the batcher"
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(30)
        assert [answers[i].status_code for i in range(3)] == [200, 200, 200]
        assert [answers[i].json()["predictions"][0] for i in range(3)] == expected
        assert server.proc.wait(30) == 0, server.output()
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/ping", timeout=2)
    finally:
        server.stop()


@pytest.mark.slow
def test_two_workers_serve_a_local_model_directory(tracking_uri, tmp_path):
    with mlflow.start_run():
        info = log_lr()
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "model"))
    frame = training_frame(rows=4, seed=9)[0]
    expected = mlflow.pyfunc.load_model(local).predict(frame).tolist()
    server = start_server(local, tracking_uri, tmp_path, "--workers", "2")
    try:
        pids = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client(base_url=server.url, timeout=10) as fresh:  # a new connection each time
                meta = fresh.get("/metadata")
                if meta.status_code == 200:  # the second worker may still be starting
                    pids.add(meta.json()["pid"])
                    answer = fresh.post("/invocations", json={"inputs": frame.to_dict(orient="list")})
                    assert answer.json() == {"predictions": expected}
        assert len(pids) == 2, f"only worker(s) {pids} answered"
        assert server.proc.pid not in pids
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0, server.output()
    finally:
        server.stop()
