"""Tracking-server benchmark (issue 10): ``sparkml-ops server`` next to ``mlflow server`` on SQLite.

    python bench/bench_server.py [--quick] [--workdir DIR] [--only log_metric,log_batch,search,bulk_interval,runs_page]

Both servers run on 127.0.0.1 with the same worker count and get the same client load:

* ``log_metric``: one client, one metric per request, median latency — on a new connection
  per request and on one kept-alive connection (MLflow's server stalls ~40-50 ms per request
  on a reused connection: a keep-alive / delayed-ACK effect; both are reported).
* ``log_batch``: 16 client threads x 1,000-metric batches against 4 workers, points/s.
* ``search``: ``runs/search`` with a filter and an order over one experiment of N runs
  (100,000; quick: 10,000) — our runs are bulk-loaded into the Delta tables, MLflow's
  through its own SQL store in the benchmark process.
* ``bulk_interval``: the metric chart request (``get-history-bulk-interval``, 320 points)
  over a 100,000-step history.
* ``runs_page``: the runs page of a 10,000-run experiment in Chromium (playwright with
  Debian's ``/usr/bin/chromium``): seconds from navigation to the first rows.

Prints one JSON line per figure; ratio = speed-up of ours over MLflow's server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import emit, parse_args, reference_env, workdir  # noqa: E402

from tests.server.serverproc import mlflow_sqlite_server, sparkml_server  # noqa: E402

GROUPS = ("log_metric", "log_batch", "search", "bulk_interval", "runs_page")
SEARCH_FILTER = "metrics.score > 0.5 and params.seed LIKE '1%'"


class Client:
    """A minimal JSON client: one kept-alive connection, or a new one per request."""

    def __init__(self, url: str, fresh: bool = False) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.fresh = fresh
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.conn is None or self.fresh:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw or b"{}")


API = "/api/2.0/mlflow"


def new_run(client: Client, experiment: str) -> str:
    experiment_id = client.call("POST", f"{API}/experiments/create", {"name": f"{experiment}-{uuid.uuid4().hex[:6]}"})
    return client.call("POST", f"{API}/runs/create", {"experiment_id": experiment_id["experiment_id"]})["run"]["info"][
        "run_id"]


def log_metric_latency(url: str, n: int, fresh: bool) -> float:
    client = Client(url, fresh=fresh)
    run_id = new_run(client, "latency")
    samples = []
    for i in range(n):
        began = time.perf_counter()
        client.call("POST", f"{API}/runs/log-metric", {"run_id": run_id, "key": "m", "value": i, "timestamp": i,
                                                      "step": i})
        samples.append(time.perf_counter() - began)
    return statistics.median(samples[5:]) * 1000


def log_batch_throughput(url: str, threads: int, batches: int) -> float:
    setup = Client(url)
    run_ids = [new_run(setup, "throughput") for _ in range(threads)]
    errors: list[str] = []

    def worker(k: int) -> None:
        client = Client(url)
        for b in range(batches):
            metrics = [{"key": f"m{j % 10}", "value": j, "timestamp": b, "step": b * 1000 + j} for j in range(1000)]
            try:
                client.call("POST", f"{API}/runs/log-batch", {"run_id": run_ids[k], "metrics": metrics})
            except Exception as exc:  # noqa: BLE001 - counted, reported
                errors.append(str(exc))

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} failed batches: {errors[:3]}")
    return threads * batches * 1000 / elapsed


def bulk_interval_ms(url: str, steps: int) -> float:
    client = Client(url)
    run_id = new_run(client, "history")
    for start in range(0, steps, 1000):
        client.call("POST", f"{API}/runs/log-batch", {"run_id": run_id, "metrics": [
            {"key": "acc", "value": i / steps, "timestamp": i, "step": i} for i in range(start, start + 1000)]})
    path = f"/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key=acc&max_results=320"
    client.call("GET", path)  # warm: the first read builds the history view
    samples = []
    for _ in range(7):
        began = time.perf_counter()
        points = client.call("GET", path)["metrics"]
        samples.append(time.perf_counter() - began)
    assert len(points) == 320, len(points)
    return statistics.median(samples) * 1000


def search_ms(url: str, experiment_id: str) -> float:
    client = Client(url)
    body = {"experiment_ids": [experiment_id], "filter": SEARCH_FILTER, "order_by": ["metrics.score DESC"],
            "max_results": 100}
    client.call("POST", f"{API}/runs/search", body)  # warm
    samples = []
    for _ in range(7):
        began = time.perf_counter()
        runs = client.call("POST", f"{API}/runs/search", body).get("runs", [])
        samples.append(time.perf_counter() - began)
    assert runs, "the search found nothing"
    return statistics.median(samples) * 1000


def fill_ours(root: Path, n: int) -> str:
    """``n`` runs with a param and a metric each, bulk-appended to the Delta tables (one commit per table)."""
    from sparkml_ops.lake import Lake, parse_root
    from sparkml_ops.tracking import entities
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = DeltaTrackingStore(f"delta:{root}")
    experiment_id = store.create_experiment("scale")
    location = store.get_experiment(experiment_id).artifact_location
    ids = [uuid.uuid4().hex for _ in range(n)]
    store.lake.append("runs", entities.columns([{
        "run_id": r, "experiment_id": experiment_id, "run_name": f"bulk-{i:06d}", "user_id": "bench",
        "status": "FINISHED", "start_time": 1_700_000_000_000 + i, "end_time": 1_700_000_000_000 + i,
        "lifecycle_stage": "active", "artifact_uri": f"{location}/{r}/artifacts", "deleted_time": None,
    } for i, r in enumerate(ids)]))
    store.lake.append("params", {"run_id": ids, "key": ["seed"] * n, "value": [str(i) for i in range(n)]})
    store.lake.append("metrics", {"run_id": ids, "key": ["score"] * n, "value": [(i * 7919 % n) / n for i in range(n)],
                                  "timestamp": [1] * n, "step": [0] * n, "model_id": [None] * n,
                                  "dataset_name": [None] * n, "dataset_digest": [None] * n})
    store.lake.append("tags", {"run_id": ids, "key": ["mlflow.runName"] * n,
                               "value": [f"bulk-{i:06d}" for i in range(n)], "deleted": [False] * n})
    store.flush()
    Lake._open[parse_root(f"delta:{root}")].close()
    return experiment_id


def fill_reference(db_dir: Path, n: int) -> str:
    """The same runs through MLflow's own SQL store (its normal write path), before its server starts."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db_dir.mkdir(parents=True, exist_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{db_dir / 'mlflow.db'}", str(db_dir / "artifacts"))
    experiment_id = store.create_experiment("scale")
    for i in range(n):
        run_id = store.create_run(experiment_id, "bench", 1_700_000_000_000 + i, [RunTag("mlflow.runName",
                                                                                          f"bulk-{i:06d}")],
                                  f"bulk-{i:06d}").info.run_id
        store.log_batch(run_id, [Metric("score", (i * 7919 % n) / n, 1, 0)], [Param("seed", str(i))], [])
    store.engine.dispose()
    return experiment_id


def runs_page_seconds(url: str, experiment_id: str, first_row: str) -> float:
    """Chromium: load the app, then time navigation to the runs page until ``first_row`` shows."""
    from playwright.sync_api import sync_playwright

    from tests.server.tour import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(f"{url}/#/experiments", wait_until="domcontentloaded")
        page.get_by_text("scale").first.wait_for(state="visible")
        samples = []
        for _ in range(3):
            page.goto(f"{url}/#/experiments", wait_until="domcontentloaded")
            page.get_by_text("scale").first.wait_for(state="visible")
            began = time.perf_counter()
            page.goto(f"{url}/#/experiments/{experiment_id}/runs", wait_until="commit")
            page.get_by_text(first_row).first.wait_for(state="visible")
            samples.append(time.perf_counter() - began)
        browser.close()
    return statistics.median(samples)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], groups=GROUPS)
    reference_env()
    quick = args.quick
    n_calls = 60 if quick else 300
    batches = 3 if quick else 10
    search_runs = 10_000 if quick else 100_000
    page_runs = 2_000 if quick else 10_000
    steps = 100_000
    with workdir(args.workdir) as base, contextlib.ExitStack() as stack:
        our_scale = fill_ours(base / "lake", search_runs) if {"search", "runs_page"} & set(args.only) else None
        ref_scale = fill_reference(base / "sqlite", page_runs) if {"search", "runs_page"} & set(args.only) else None
        ours = stack.enter_context(sparkml_server(base / "lake", base / "ours.log", workers=4))
        ref = stack.enter_context(mlflow_sqlite_server(base / "sqlite", base / "ref.log", workers=4))
        if "log_metric" in args.only:
            for fresh in (True, False):
                figures = {name: log_metric_latency(s.url, n_calls, fresh) for name, s in (("ours", ours),
                                                                                           ("mlflow_sqlite", ref))}
                emit(f"log_metric_c1_{'fresh' if fresh else 'reused'}_connection_median", ours=figures["ours"],
                     reference={"mlflow_server_sqlite": figures["mlflow_sqlite"]}, unit="ms", better="lower",
                     n=n_calls, workers=4)
        if "log_batch" in args.only:
            figures = {name: log_batch_throughput(s.url, 16, batches) for name, s in (("ours", ours), ("ref", ref))}
            emit("log_batch_16_threads_4_workers", ours=figures["ours"], reference={"mlflow_server_sqlite":
                 figures["ref"]}, unit="points/s", better="higher", target=10 * figures["ref"],
                 n=16 * batches * 1000)
        if "bulk_interval" in args.only:
            figures = {name: bulk_interval_ms(s.url, steps) for name, s in (("ours", ours), ("ref", ref))}
            emit("bulk_interval_100k_steps", ours=figures["ours"], reference={"mlflow_server_sqlite": figures["ref"]},
                 unit="ms", better="lower", target=300, n=steps)
        if "search" in args.only:
            ours_ms = search_ms(ours.url, our_scale)
            ref_ms = search_ms(ref.url, ref_scale)
            emit("runs_search_filter_order", ours=ours_ms, reference={"mlflow_server_sqlite": ref_ms}, unit="ms",
                 better="lower", target=300, n=search_runs, reference_n=page_runs,
                 note="reference measured at reference_n runs (its SQL store fills ~100 runs/s here)")
        if "runs_page" in args.only:
            ours_s = runs_page_seconds(ours.url, our_scale, f"bulk-{search_runs - 1:06d}")
            ref_s = runs_page_seconds(ref.url, ref_scale, f"bulk-{page_runs - 1:06d}")
            emit("runs_page_first_rows", ours=ours_s, reference={"mlflow_server_sqlite": ref_s}, unit="s",
                 better="lower", target=2.0, n=search_runs, reference_n=page_runs)
    os.environ.pop("MLFLOW_TRACKING_URI", None)


if __name__ == "__main__":
    main()
