"""Tracking-server benchmark (issue 10): ``sparkml-ops server`` next to ``mlflow server`` on SQLite.

    python bench/bench_server.py [--quick] [--workdir DIR] [--only log_metric,log_batch,search,bulk_interval,runs_page]

Both servers run on 127.0.0.1 with the same worker count and get the same client load:

* ``log_metric``: one client, one metric per request, median latency — on a new connection
  per request and on one kept-alive connection (MLflow's server stalls ~40-50 ms per request
  on a reused connection: a keep-alive / delayed-ACK effect; both are reported).
* ``log_batch``: 16 client threads x 1,000-metric batches against 4 workers, points/s.
* ``search``: ``runs/search`` with a filter and an order over one experiment of N runs
  (100,000; quick: 10,000; 20 params, 10 metrics, 5 tags each) — the same runs in both:
  ours bulk-loaded through our store's write path, MLflow's into its SQLite schema by
  ``executemany`` from a template run (``_tracking_data``); both answers are checked.
* ``bulk_interval``: the metric chart request (``get-history-bulk-interval``, 320 points)
  over a 100,000-step history (quick: 20,000) logged over HTTP, once every worker has it.
* ``runs_page``: the runs page of a 10,000-run experiment (quick: 2,000) in Chromium
  (playwright with Debian's ``/usr/bin/chromium``): seconds from navigation to the first rows.

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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import emit, parse_args, reference_env, workdir  # noqa: E402
from _tracking_data import (  # noqa: E402
    FILTER,
    ORDER_BY,
    TOP,
    RunsDataset,
    _dispose_sqlalchemy_engines,
    build_ours_bulk,
    build_sqlite_bulk,
    sqlite_template,
)

from tests.server.serverproc import mlflow_sqlite_server, sparkml_server  # noqa: E402

GROUPS = ("log_metric", "log_batch", "search", "bulk_interval", "runs_page")
CACHE_DIR = Path("~/.cache/sparkml_ops/bench").expanduser()  # migrated empty MLflow databases


class Client:
    """A minimal JSON client: one kept-alive connection, or a new one per request."""

    def __init__(self, url: str, fresh: bool = False) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.fresh = fresh
        self.conn: http.client.HTTPConnection | None = None

    retries = 0  # 503 answers retried, over all clients (MLflow's SQLite store: "database is locked")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One request; a 503 is retried with backoff as MLflow's own client does (up to 6 times)."""
        for attempt in range(7):
            status, raw = self._send(method, path, body)
            if status != 503 or attempt == 6:
                break
            Client.retries += 1
            time.sleep(0.1 * 2 ** attempt)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
        return json.loads(raw or b"{}")

    def _send(self, method: str, path: str, body: dict | None) -> tuple[int, bytes]:
        if self.conn is None or self.fresh:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle kept-alive connection as the request went out: a new one
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = self.conn.getresponse()
        return response.status, response.read()


API = "/api/2.0/mlflow"


def new_run(client: Client, experiment: str) -> str:
    experiment_id = client.call("POST", f"{API}/experiments/create", {"name": f"{experiment}-{uuid.uuid4().hex[:6]}"})
    return client.call("POST", f"{API}/runs/create", {"experiment_id": experiment_id["experiment_id"]})["run"]["info"][
        "run_id"]


def settle(url: str, path: str, complete: Callable[[dict], bool], timeout_s: float = 120) -> None:
    """Wait until 8 requests in a row, each on a new connection (so spread over the workers),
    get a complete answer: with several workers a write is seen by the others only once its
    group commit lands (issue 11), and the figures are of the steady state."""
    deadline, good = time.monotonic() + timeout_s, 0
    while good < 8:
        try:
            good = good + 1 if complete(Client(url, fresh=True).call("GET", path)) else 0
        except RuntimeError:
            good = 0
        if time.monotonic() > deadline:
            raise RuntimeError(f"GET {path}: no complete answer from every worker in {timeout_s} s")
        if good == 0:
            time.sleep(0.2)


def visible_run(url: str, run_id: str) -> None:
    settle(url, f"{API}/runs/get?run_id={run_id}", lambda answer: "run" in answer)


def log_metric_latency(url: str, n: int, fresh: bool) -> float:
    run_id = new_run(Client(url), "latency")
    visible_run(url, run_id)
    client = Client(url, fresh=fresh)
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
    for run_id in run_ids:
        visible_run(url, run_id)
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
    """Median of 7 requests for the chart of a ``steps``-step history, once every worker has
    answered it in full (each builds its own sorted history of the run on its first request)."""
    client = Client(url)
    run_id = new_run(client, "history")
    for start in range(0, steps, 1000):
        client.call("POST", f"{API}/runs/log-batch", {"run_id": run_id, "metrics": [
            {"key": "acc", "value": i / steps, "timestamp": i, "step": i} for i in range(start, start + 1000)]})
    path = f"/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key=acc&max_results=320"
    settle(url, path, lambda answer: len(answer.get("metrics", [])) == 320
           and answer["metrics"][-1]["step"] == steps - 1)
    samples = []
    for _ in range(7):
        began = time.perf_counter()
        points = client.call("GET", path)["metrics"]
        samples.append(time.perf_counter() - began)
    assert len(points) == 320 and points[-1]["step"] == steps - 1, (len(points), points[-1])
    return statistics.median(samples) * 1000


def search_ms(url: str, experiment_id: str) -> tuple[float, list[str]]:
    """Median of 7 (3 when slow) warm ``runs/search`` calls (filter + order, top 100) and the names found."""
    client = Client(url)
    body = {"experiment_ids": [experiment_id], "filter": FILTER, "order_by": ORDER_BY, "max_results": TOP}
    began = time.perf_counter()
    client.call("POST", f"{API}/runs/search", body)  # warm
    repeats = 7 if time.perf_counter() - began < 2 else 3  # MLflow's SQLite store takes ~1 min at 100,000 runs
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        runs = client.call("POST", f"{API}/runs/search", body).get("runs", [])
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000, [r["info"]["run_name"] for r in runs]


def fill_ours(root: Path, data: RunsDataset, sizes: dict[str, range]) -> dict[str, str]:
    """One experiment per ``sizes`` entry (the dataset's runs in that range), bulk-loaded through
    our store's write path (WAL + group commit)."""
    from sparkml_ops.lake import Lake, parse_root
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = DeltaTrackingStore(f"delta:{root}")
    ids = {}
    for name, runs in sizes.items():
        ids[name] = store.create_experiment(name)
        build_ours_bulk(store, ids[name], data, runs.start, runs.stop)
    Lake._open[parse_root(f"delta:{root}")].close()
    return ids


def fill_reference(db_dir: Path, data: RunsDataset, sizes: dict[str, range]) -> dict[str, str]:
    """The same runs in MLflow's SQLite schema (one run through MLflow's API, the rest copied from
    it with their own values by ``executemany``), before MLflow's server opens the database.
    The ranges must not overlap: the copier finds its template run by name."""
    from mlflow import MlflowClient

    db_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite_template(CACHE_DIR, db_dir / "mlflow.db")
    client = MlflowClient(f"sqlite:///{db}")
    ids = {}
    for name, runs in sizes.items():
        ids[name] = client.create_experiment(name)
        build_sqlite_bulk(client, db, ids[name], data, runs.start, runs.stop)
    _dispose_sqlalchemy_engines()
    return ids


def runs_page_seconds(url: str, experiment_id: str, experiment_name: str, first_row: str) -> float:
    """Chromium: load the app, then time navigation to the runs page until ``first_row`` shows."""
    from playwright.sync_api import sync_playwright

    from tests.server.tour import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1920, "height": 1000})
        page.set_default_timeout(120_000)
        samples = []
        for _ in range(4):  # the first loads the app's code and warms the server: not counted
            page.goto(f"{url}/#/experiments", wait_until="domcontentloaded")
            page.get_by_text(experiment_name).filter(visible=True).first.wait_for(state="visible")
            began = time.perf_counter()
            page.goto(f"{url}/#/experiments/{experiment_id}/runs", wait_until="commit")
            try:
                page.get_by_text(first_row, exact=True).filter(visible=True).first.wait_for(state="visible")
            except Exception:
                print(f"# runs page never showed {first_row}: {page.inner_text('body')[:2000]}", file=sys.stderr)
                raise
            samples.append(time.perf_counter() - began)
        browser.close()
    return statistics.median(samples[1:])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], groups=GROUPS)
    reference_env()
    quick = args.quick
    n_calls = 60 if quick else 300
    batches = 3 if quick else 10
    search_runs = 10_000 if quick else 100_000
    page_runs = 2_000 if quick else 10_000
    steps = 20_000 if quick else 100_000
    search_range, page_range = range(0, search_runs), range(search_runs, search_runs + page_runs)
    sizes = {}
    if "search" in args.only:
        sizes[f"search-{search_runs}"] = search_range
    if "runs_page" in args.only:
        sizes[f"page-{page_runs}"] = page_range
    data = RunsDataset.make(page_range.stop)
    with workdir(args.workdir) as base, contextlib.ExitStack() as stack:
        began = time.perf_counter()
        our_ids = fill_ours(base / "lake", data, sizes)
        print(f"# ours filled in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        began = time.perf_counter()
        ref_ids = fill_reference(base / "sqlite", data, sizes)
        print(f"# reference filled in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        ours = stack.enter_context(sparkml_server(base / "lake", base / "ours.log", workers=4))
        ref = stack.enter_context(mlflow_sqlite_server(base / "sqlite", base / "ref.log", workers=4))
        servers = (("ours", ours), ("mlflow_sqlite", ref))
        if "log_metric" in args.only:
            for fresh in (True, False):
                figures = {name: log_metric_latency(s.url, n_calls, fresh) for name, s in servers}
                emit(f"log_metric_c1_{'fresh' if fresh else 'reused'}_connection_median", ours=figures["ours"],
                     reference={"mlflow_server_sqlite": figures["mlflow_sqlite"]}, unit="ms", better="lower",
                     n=n_calls, workers=4)
        if "log_batch" in args.only:
            figures, retried = {}, {}
            for name, s in servers:
                before = Client.retries
                figures[name] = log_batch_throughput(s.url, 16, batches)
                retried[name] = Client.retries - before
            emit("log_batch_16_threads_4_workers", ours=figures["ours"], reference={"mlflow_server_sqlite":
                 figures["mlflow_sqlite"]}, unit="points/s", better="higher", target=10 * figures["mlflow_sqlite"],
                 n=16 * batches * 1000, batches_retried_after_503=retried)
        if "bulk_interval" in args.only:
            figures = {name: bulk_interval_ms(s.url, steps) for name, s in servers}
            emit(f"bulk_interval_{steps}_steps", ours=figures["ours"], reference={"mlflow_server_sqlite":
                 figures["mlflow_sqlite"]}, unit="ms", better="lower", target=300, n=steps)
        if "search" in args.only:
            name = f"search-{search_runs}"
            expected = data.expected_top(search_range.start, search_range.stop)
            (ours_ms, ours_found), (ref_ms, ref_found) = (search_ms(ours.url, our_ids[name]),
                                                          search_ms(ref.url, ref_ids[name]))
            for who, found in (("ours", ours_found), ("mlflow_sqlite", ref_found)):
                if found != expected:
                    raise RuntimeError(f"{who}'s runs/search answer is not the expected top {TOP}: "
                                       f"{len(found)} runs, first {found[:5]} (expected {expected[:5]})")
            emit("runs_search_filter_order", ours=ours_ms, reference={"mlflow_server_sqlite": ref_ms}, unit="ms",
                 better="lower", target=300, n=search_runs, filter=FILTER, order_by=ORDER_BY)
        if "runs_page" in args.only:
            name, first_row = f"page-{page_runs}", data.run_name(page_range.stop - 1)  # the newest
            figures = {key: runs_page_seconds(s.url, ids[name], name, first_row)
                       for (key, s), ids in zip(servers, (our_ids, ref_ids), strict=True)}
            emit("runs_page_first_rows", ours=figures["ours"], reference={"mlflow_server_sqlite":
                 figures["mlflow_sqlite"]}, unit="s", better="lower", target=2.0, n=page_runs)
    os.environ.pop("MLFLOW_TRACKING_URI", None)


if __name__ == "__main__":
    main()
