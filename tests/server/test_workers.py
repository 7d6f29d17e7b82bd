"""Four server processes writing one root, sixteen clients at once: every value counted back."""

from __future__ import annotations

import threading
import time
import warnings

import psutil
import requests

from tests.server.serverproc import sparkml_server

CLIENTS = 16
BATCHES = 10
PER_BATCH = 100


def test_four_workers_sixteen_clients_lose_and_duplicate_nothing(tmp_path):
    root = tmp_path / "lake"
    with sparkml_server(root, tmp_path / "server.log", workers=4) as server:
        api = f"{server.url}/api/2.0/mlflow"
        session = requests.Session()
        experiment_id = session.post(f"{api}/experiments/create", json={"name": "many"}).json()["experiment_id"]
        run_ids = [session.post(f"{api}/runs/create", json={"experiment_id": experiment_id}).json()["run"]["info"][
            "run_id"] for _ in range(CLIENTS)]
        failures: list[str] = []

        def client(k: int) -> None:
            http = requests.Session()  # each client its own connections: spread over the workers
            for b in range(BATCHES):
                metrics = [{"key": "m", "value": float(b * PER_BATCH + i), "timestamp": 1, "step": b * PER_BATCH + i}
                           for i in range(PER_BATCH)]
                body = {"run_id": run_ids[k], "metrics": metrics,
                        "params": [{"key": f"p{b}", "value": str(k)}], "tags": [{"key": f"t{b}", "value": str(b)}]}
                response = http.post(f"{api}/runs/log-batch", json=body)
                if response.status_code != 200:
                    failures.append(f"client {k} batch {b}: {response.status_code} {response.text[:200]}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[:5]

        for k, run_id in enumerate(run_ids):
            # Logged values are acknowledged in the worker that took them and committed within the
            # flush interval: other workers see them then (creations are visible at once).
            deadline, steps = time.monotonic() + 30, []
            while time.monotonic() < deadline:
                history = session.get(f"{api}/metrics/get-history",
                                      params={"run_id": run_id, "metric_key": "m", "max_results": 25000}).json()
                steps = sorted(int(m["step"]) for m in history["metrics"])
                if len(steps) >= BATCHES * PER_BATCH:
                    break
                time.sleep(0.2)
            assert steps == list(range(BATCHES * PER_BATCH)), f"run {k}: {len(steps)} values"
            data = session.get(f"{api}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
            assert {p["key"]: p["value"] for p in data["params"]} == {f"p{b}": str(k) for b in range(BATCHES)}
            assert {t["key"] for t in data["tags"]} >= {f"t{b}" for b in range(BATCHES)}
        # Four workers still serve: uvicorn replaces one that died (its log says so), and starting
        # a replacement (importing MLflow) takes a minute or more on a loaded 2-core machine.
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 240
        while len(workers) < 4 and time.monotonic() < deadline:
            workers = [c for c in psutil.Process(server.process.pid).children(recursive=True)
                       if "spawn_main" in " ".join(_cmdline(c))]
            time.sleep(0.5)
        died = [line for line in server.log_text().splitlines() if "died" in line]
        assert len(workers) >= 4, (f"{len(workers)} workers", died)
        if died:
            warnings.warn(f"workers died and were replaced during the test: {died}", stacklevel=1)

    # The root holds exactly that, read back without any server.
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = DeltaTrackingStore(f"delta:{root}")
    total = sum(len(store.get_metric_history(r, "m")) for r in run_ids)
    assert total == CLIENTS * BATCHES * PER_BATCH


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # exited meanwhile (uvicorn's helper processes come and go)
        return []
