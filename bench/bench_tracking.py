"""Tracking-store benchmarks (issue 2): our ``delta:`` store next to MLflow's SQLite and file stores.

    python bench/bench_tracking.py [--quick] [--only log_metric,search,...] [--workdir DIR]

Every figure is measured for all three stores in the same run and printed as one JSON line
(``figure``, ``ours``, ``reference``, ``ratio`` = speed-up of ours, ``unit``, ``target``,
``n``). All calls go through ``mlflow.MlflowClient``; ours is flushed (committed to Delta)
wherever a figure says "committed". Sizes that MLflow's stores cannot reach in the time
are reported at their own size, never scaled, with ours measured at that size too for the
ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    emit,
    median,
    parse_args,
    percentile,
    reference_env,
    run_isolated,
    spawn_context,
    stopwatch,
    time_calls,
    workdir,
)

GROUPS = ("log_metric", "log_batch", "log_table", "create_runs", "metric_history", "search", "concurrent",
          "recovery")
KINDS = ("ours", "sqlite", "file")
REFS = ("sqlite", "file")
CACHE_DIR = Path("~/.cache/sparkml_ops/bench").expanduser()

SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "log_metric": {"ours": 2_000, "sqlite": 100, "file": 500},
        "log_batch": {"ours": 50, "sqlite": 2, "file": 2},  # batches of 1,000 points
        "log_table": {"ours": 1_000_000, "sqlite": 2, "file": 2},  # ours: points in one call; refs: log_batch calls
        "create_runs": {"ours": 300, "sqlite": 20, "file": 20},
        "metric_history": 5_000,
        "search": {"ours_experiments": 2, "runs_per_experiment": 2_500, "sqlite": 200, "file": 50},
        "concurrent": {"processes": 4, "ours": 10_000, "sqlite": 500, "file": 500},
        "recovery": {"ours": 2_000, "sqlite": 200},
    },
    "full": {
        "log_metric": {"ours": 20_000, "sqlite": 1_500, "file": 5_000},
        "log_batch": {"ours": 500, "sqlite": 10, "file": 10},
        "log_table": {"ours": 10_000_000, "sqlite": 10, "file": 10},
        "create_runs": {"ours": 3_000, "sqlite": 150, "file": 150},
        "metric_history": 100_000,
        "search": {"ours_experiments": 10, "runs_per_experiment": 10_000, "sqlite": 10_000, "file": 1_000},
        "concurrent": {"processes": 8, "ours": 200_000, "sqlite": 4_000, "file": 4_000},
        "recovery": {"ours": 20_000, "sqlite": 1_000},
    },
}

TARGETS = {
    "log_metric_median_us": 50.0,
    "log_batch_points_per_s": 500_000.0,
    "log_table_points_per_s": 5_000_000.0,
    "runs_per_s": 1_000.0,
    "metric_history_ms": 100.0,
    "search_top100_ms": 200.0,
    "search_all_ms": 500.0,
    "concurrent_points_per_s": 100_000.0,
    "search_peak_rss_mb": 1024.0,
    "recovery_visible_s": 5.0,
}


class Stores:
    """One MlflowClient per (store kind, name), each on its own fresh store under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._clients: dict[tuple[str, str], Any] = {}

    def uri(self, kind: str, name: str) -> str:
        from _tracking_data import sqlite_template

        if kind == "ours":
            return f"delta:{self.base / (name + '-delta')}"
        if kind == "sqlite":
            path = self.base / f"{name}.db"
            if not path.exists():
                sqlite_template(CACHE_DIR, path)
            return f"sqlite:///{path}"
        if kind == "file":
            return (self.base / f"{name}-mlruns").as_uri()
        raise ValueError(f"unknown store kind {kind!r}; expected one of {KINDS}")

    def client(self, kind: str, name: str = "main"):
        from mlflow import MlflowClient

        key = (kind, name)
        if key not in self._clients:
            self._clients[key] = MlflowClient(self.uri(kind, name))
        return self._clients[key]

    def close_ours(self) -> None:
        for (kind, _), client in self._clients.items():
            if kind == "ours":
                client._tracking_client.store.lake.close()


class _NoopStore:
    """Accepts log calls and does nothing: what MlflowClient costs by itself."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        pass

    def log_metric(self, run_id: str, metric: Any) -> None:
        pass

    def log_batch(self, run_id: str, metrics: Any, params: Any, tags: Any) -> None:
        pass


def _noop_client():
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service import utils

    utils._tracking_store_registry.register("bench-noop", _NoopStore)
    return MlflowClient("bench-noop:/nowhere")


def _ours_store(client):
    return client._tracking_client.store


def _size_note(quick: bool) -> dict[str, str]:
    return {"mode": "quick" if quick else "full"}


# ================================================================ log_metric latency

def bench_log_metric(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    from mlflow.entities import Metric

    medians, p99s, store_call = {}, {}, {}
    for kind in KINDS:
        client = stores.client(kind)
        run_id = client.create_run(client.create_experiment(f"latency-{kind}")).info.run_id
        n = sizes[kind]
        samples = time_calls(lambda i, c=client, r=run_id: c.log_metric(r, "loss", 0.5, step=i), n,
                             warmup=max(20, n // 20))
        medians[kind], p99s[kind] = median(samples) / 1e3, percentile(samples, 99) / 1e3
        if kind == "ours":
            store = _ours_store(client)
            ts = int(time.time() * 1000)
            raw = time_calls(lambda i, s=store, r=run_id, t=ts: s.log_metric(r, Metric("direct", 0.5, t, i)), n,
                             warmup=max(20, n // 20))
            store_call = {"median_us": median(raw) / 1e3, "p99_us": percentile(raw, 99) / 1e3}
            store.flush()
    client_only = time_calls(lambda i, c=_noop_client(): c.log_metric("0" * 32, "loss", 0.5, step=i), sizes["ours"],
                             warmup=max(20, sizes["ours"] // 20))
    n = dict(sizes)
    common = dict(unit="us", better="lower", n=n, **_size_note(quick),
                  how="MlflowClient.log_metric on an active run, one call timed each (ours: acknowledged = in "
                      "the write-ahead log; commit is in the background)")
    emit("log_metric_latency_median", ours=medians["ours"], reference={k: medians[k] for k in REFS},
         target=TARGETS["log_metric_median_us"], ours_store_call_only=store_call,
         mlflow_client_alone_us={"median": median(client_only) / 1e3, "p99": percentile(client_only, 99) / 1e3,
                                 "what": "the same MlflowClient call on a store that does nothing: "
                                         "MLflow's own share of every figure"}, **common)
    emit("log_metric_latency_p99", ours=p99s["ours"], reference={k: p99s[k] for k in REFS}, **common)


# ================================================================ log_batch throughput

def bench_log_batch(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    from mlflow.entities import Metric

    rates, committed = {}, None
    ts = int(time.time() * 1000)
    for kind in KINDS:
        client = stores.client(kind)
        points, seconds = _log_batches(client, f"batch-{kind}", sizes[kind])
        rates[kind] = points / seconds
        if kind == "ours":
            with stopwatch() as flush:
                _ours_store(client).flush()
            committed = points / (seconds + flush["s"])
    noop = _noop_client()
    batches = [[Metric(f"m{j}", float(j + b), ts, b) for j in range(1000)] for b in range(sizes["ours"])]
    with stopwatch() as alone:
        for batch in batches:
            noop.log_batch("0" * 32, metrics=batch)
    emit("log_batch_points_per_s", ours=rates["ours"], reference={k: rates[k] for k in REFS},
         unit="points/s", better="higher", target=TARGETS["log_batch_points_per_s"],
         n={k: 1000 * v for k, v in sizes.items()}, batch_size=1000,
         ours_including_final_commit=committed,
         mlflow_client_alone_points_per_s=1000 * len(batches) / alone["s"],
         mlflow_client_alone_what="MlflowClient.log_batch on a store that does nothing: the ceiling any store "
                                  "reaches through the client",
         how="MlflowClient.log_batch with 1,000 metrics per call, metric objects built beforehand",
         **_size_note(quick))


def _log_batches(client, experiment: str, count: int) -> tuple[int, float]:
    """``count`` log_batch calls of 1,000 metrics (built beforehand) to a new run: (points, seconds)."""
    from mlflow.entities import Metric

    run_id = client.create_run(client.create_experiment(experiment)).info.run_id
    ts = int(time.time() * 1000)
    batches = [[Metric(f"m{j}", float(j + b), ts, b) for j in range(1000)] for b in range(count)]
    with stopwatch() as took:
        for batch in batches:
            client.log_batch(run_id, metrics=batch)
    return 1000 * count, took["s"]


# ================================================================ bulk logging from Arrow

def bench_log_table(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    """``sparkml_ops.tracking.log_table`` with one Arrow table of ``n`` points (a long training
    curve of 10 metrics) against MLflow's fastest path for the same data, ``log_batch``."""
    import numpy as np
    import pyarrow as pa

    from sparkml_ops.tracking import log_table

    n = sizes["ours"]
    client = stores.client("ours")
    run_id = client.create_run(client.create_experiment("table-ours")).info.run_id
    steps = np.arange(n, dtype=np.int64) // 10
    keys = pa.DictionaryArray.from_arrays(pa.array((np.arange(n) % 10).astype(np.int32)),
                                          pa.array([f"m{j}" for j in range(10)]))
    table = pa.table({"key": keys, "value": np.random.default_rng(0).random(n), "step": steps,
                      "timestamp": steps + int(time.time() * 1000)})
    log_table(run_id, table.slice(0, 1000), tracking_uri=stores.uri("ours", "main"))  # warm-up: first-call costs
    with stopwatch() as acked:
        log_table(run_id, table, tracking_uri=stores.uri("ours", "main"))
    with stopwatch() as flush:
        _ours_store(client).flush()
    rates = {"ours": n / acked["s"]}
    plain = table.set_column(0, "key", keys.cast(pa.string()))  # keys as plain strings (not categorical)
    string_run = client.create_run(client.get_experiment_by_name("table-ours").experiment_id).info.run_id
    with stopwatch() as acked_plain:
        log_table(string_run, plain, tracking_uri=stores.uri("ours", "main"))
    _ours_store(client).flush()
    for kind in REFS:
        points, seconds = _log_batches(stores.client(kind), f"table-{kind}", sizes[kind])
        rates[kind] = points / seconds
    emit("log_table_points_per_s", ours=rates["ours"], reference={k: rates[k] for k in REFS},
         unit="points/s", better="higher", target=TARGETS["log_table_points_per_s"],
         n={"ours": n, **{k: 1000 * sizes[k] for k in REFS}},
         ours_including_final_commit=n / (acked["s"] + flush["s"]), ours_commit_s=flush["s"],
         ours_plain_string_keys=n / acked_plain["s"],
         how="ours: one log_table call with a pyarrow Table of n points (10 keys dictionary-encoded as a pandas "
             "Categorical gives them, value, step, timestamp; ours_plain_string_keys: the same with string keys), "
             "acknowledged in the write-ahead log; reference: MlflowClient.log_batch, 1,000 metrics per call",
         **_size_note(quick))


# ================================================================ runs created per second

def bench_create_runs(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    from _tracking_data import RunsDataset

    data = RunsDataset.make(max(sizes.values()))
    rates, flush_s = {}, None
    for kind in KINDS:
        client = stores.client(kind)
        exp = client.create_experiment(f"runs-{kind}")
        n = sizes[kind]
        values = [data.entities(i) for i in range(n)]
        with stopwatch() as elapsed:
            for i in range(n):
                run_id = client.create_run(exp, run_name=data.run_name(i)).info.run_id
                metrics, params, tags = values[i]
                client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
                client.set_terminated(run_id)
            if kind == "ours":
                with stopwatch() as flush:
                    _ours_store(client).flush()
                flush_s = flush["s"]
        rates[kind] = n / elapsed["s"]
    emit("runs_created_per_s", ours=rates["ours"], reference={k: rates[k] for k in REFS}, unit="runs/s",
         better="higher", target=TARGETS["runs_per_s"], n=dict(sizes), ours_final_flush_s=flush_s,
         how="create_run + one log_batch (20 params, 10 metrics, 5 tags) + set_terminated per run; "
             "ours includes the final flush that commits everything to Delta",
         **_size_note(quick))


# ================================================================ metric history

def bench_metric_history(stores: Stores, steps: int, quick: bool) -> None:
    from mlflow.entities import Metric

    warm, first, cold, correct = {}, {}, {}, {}
    ts = int(time.time() * 1000)
    for kind in KINDS:
        client = stores.client(kind)
        run_id = client.create_run(client.create_experiment(f"history-{kind}")).info.run_id
        for lo in range(0, steps, 1000):
            client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), ts + s, s)
                                              for s in range(lo, min(steps, lo + 1000))])
        if kind == "ours":
            _ours_store(client).flush()  # committed before timing
        with stopwatch() as t:
            history = client.get_metric_history(run_id, "loss")
        first[kind] = t["s"] * 1e3
        correct[kind] = len(history) == steps and [m.step for m in history] == list(range(steps))
        times = []
        for _ in range(3):
            with stopwatch() as t:
                client.get_metric_history(run_id, "loss")
            times.append(t["s"] * 1e3)
        warm[kind] = median(times)
        if not quick:
            cold[kind] = run_isolated(_history_child, stores.uri(kind, "main"), run_id)
    emit("metric_history_ms", ours=warm["ours"], reference={k: warm[k] for k in REFS}, unit="ms",
         better="lower", target=TARGETS["metric_history_ms"], n=steps, first_call_ms=first,
         cold_process_first_call_ms=cold or None, correct=correct,
         how="MlflowClient.get_metric_history of one key with `n` steps, data committed; median of 3 "
             "warm calls (first call and a fresh process's first call reported too)",
         **_size_note(quick))


def _history_child(uri: str, run_id: str) -> float:
    """First get_metric_history in a fresh process (opening the store is not counted)."""
    reference_env()
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    client.get_run(run_id)
    with stopwatch() as t:
        client.get_metric_history(run_id, "loss")
    return t["s"] * 1e3


# ================================================================ search and memory

def bench_search(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    from _tracking_data import RunsDataset, build_ours_bulk, build_sqlite_bulk, build_via_api

    per_exp, n_exps = sizes["runs_per_experiment"], sizes["ours_experiments"]
    big = per_exp * n_exps
    data = RunsDataset.make(max(big, sizes["sqlite"], sizes["file"]))
    build_s: dict[str, float] = {}

    # ours: the big root (n_exps experiments of per_exp runs), plus one root per reference size
    targets: dict[str, dict[str, Any]] = {}
    client = stores.client("ours", "search-big")
    with stopwatch() as t:
        exp_ids = []
        for e in range(n_exps):
            exp_ids.append(client.create_experiment(f"search-{e}"))
            build_ours_bulk(_ours_store(client), exp_ids[-1], data, e * per_exp, (e + 1) * per_exp)
    build_s["ours"] = t["s"]
    targets["ours"] = {"uri": stores.uri("ours", "search-big"), "all": exp_ids, "one": exp_ids[0],
                       "n_one": per_exp, "top": data.expected_top(0, big), "n": big}
    for ref in REFS:
        n = sizes[ref]
        name = f"search-{n}"
        if ("ours", name) not in stores._clients:
            c = stores.client("ours", name)
            exp = c.create_experiment("search")
            build_ours_bulk(_ours_store(c), exp, data, 0, n)
            targets[f"ours@{n}"] = {"uri": stores.uri("ours", name), "all": [exp], "one": exp, "n_one": n,
                                    "top": data.expected_top(0, n), "n": n}
        c = stores.client(ref, name)
        exp = c.create_experiment("search")
        with stopwatch() as t:
            if ref == "sqlite":
                build_sqlite_bulk(c, Path(stores.uri(ref, name)[len("sqlite:///"):]), exp, data, 0, n)
            else:
                build_via_api(c, exp, data, 0, n)
        build_s[ref] = t["s"]
        targets[ref] = {"uri": stores.uri(ref, name), "all": [exp], "one": exp, "n_one": n,
                        "top": data.expected_top(0, n), "n": n}
    stores.close_ours()  # everything committed; children open the roots afresh

    if quick:  # one child for every store (saves process starts): only the first store's peak memory counts
        labels = ["ours"] + [label for label in targets if label != "ours"]
        results = dict(zip(labels, run_isolated(_search_child, [targets[k] for k in labels], 2), strict=True))
        for label in labels[1:]:
            results[label]["peak_rss_mb"] = None
    else:
        results = {label: run_isolated(_search_child, [spec], 5)[0] for label, spec in targets.items()}
    at = {ref: f"ours@{sizes[ref]}" for ref in REFS}
    n = {"ours": big, **{ref: sizes[ref] for ref in REFS}}
    how_build = {
        "ours": f"{n_exps} experiments x {per_exp} runs written with the store's own write path in bulk "
                "(Lake.append: WAL + group commit, columnar chunks of 5,000 runs; the rows create_run + "
                "log_batch + set_terminated write), then flushed",
        "sqlite": "one run through MlflowClient, the rest copied from its rows into MLflow's schema "
                  "(runs, params, metrics, latest_metrics, tags) with sqlite executemany",
        "file": "MlflowClient: create_run + log_batch + set_terminated per run",
    }
    common = dict(n=n, better="lower", build_s=build_s, build=how_build, **_size_note(quick),
                  processes="one fresh process per store" if not quick else
                  "quick: one process for all stores in turn; only ours' first call is cold and only its "
                  "peak memory is measured")
    correct = {label: r["top_correct"] and r["all_correct"] for label, r in results.items()}

    def figure(name: str, key: str, unit: str, target: float, how: str) -> None:
        emit(name, ours=results["ours"][key], reference={ref: results[ref][key] for ref in REFS},
             ratio_basis={ref: results[at[ref]][key] for ref in REFS},
             ours_at_reference_sizes={at[ref]: results[at[ref]][key] for ref in REFS},
             unit=unit, target=target, how=how, **common,
             **({} if key == "peak_rss_mb" else {"first_call_in_fresh_process": {
                 label: results[label][key.replace("warm", "first")] for label in results}}),
             **({"correct": correct} if key != "peak_rss_mb" else {
                 "rss_after_opening_store_mb": {label: r["baseline_rss_mb"] for label, r in results.items()}}))

    figure("search_runs_filter_order_top100_ms", "top_warm_ms", "ms", TARGETS["search_top100_ms"],
           f"search_runs(all experiments, {FILTER_TEXT}, order_by={ORDER_TEXT}, max_results=100); "
           "median of warm calls in a fresh process; ratio against ours at the reference's size")
    figure("search_runs_all_of_one_experiment_ms", "all_warm_ms", "ms", TARGETS["search_all_ms"],
           "search_runs([one experiment], max_results=its run count): every run with its data "
           f"(ours: {per_exp} of {big} runs); median of warm calls in a fresh process")
    figure("search_peak_rss_mb", "peak_rss_mb", "MiB", TARGETS["search_peak_rss_mb"],
           "ru_maxrss of a fresh process that opens the store and runs both searches above")


FILTER_TEXT = "filter_string=\"params.p0 = 'v3' and metrics.m0 > 0.5\""
ORDER_TEXT = "['metrics.m1 DESC']"


def _search_child(specs: list[dict[str, Any]], repeats: int) -> list[dict[str, Any]]:
    """Both searches on each store in turn, in a fresh process: first call, warm median,
    answers checked, and the peak RSS after each store."""
    reference_env()
    return [_search_one(spec, repeats) for spec in specs]


def _search_one(spec: dict[str, Any], repeats: int) -> dict[str, Any]:
    import psutil
    from _common import peak_rss_mb
    from _tracking_data import FILTER, ORDER_BY, TOP
    from mlflow import MlflowClient

    client = MlflowClient(spec["uri"])
    client.get_experiment(spec["one"])
    baseline = psutil.Process().memory_info().rss / 2**20
    out: dict[str, Any] = {"baseline_rss_mb": baseline}

    def top() -> list:
        return client.search_runs(spec["all"], FILTER, order_by=ORDER_BY, max_results=TOP)

    def everything() -> list:
        return client.search_runs([spec["one"]], max_results=spec["n_one"])

    for name, fn in (("top", top), ("all", everything)):
        with stopwatch() as t:
            result = fn()
        out[f"{name}_first_ms"] = t["s"] * 1e3
        times, spent = [], t["s"]
        while len(times) < repeats and (spent < 8.0 or len(times) < 1):
            with stopwatch() as t:
                fn()
            times.append(t["s"] * 1e3)
            spent += t["s"]
        out[f"{name}_warm_ms"] = median(times)
        if name == "top":
            out["top_correct"] = [r.info.run_name for r in result] == spec["top"]
        else:
            out["all_correct"] = len(result) == spec["n_one"] and all(
                len(r.data.params) == 20 and len(r.data.metrics) == 10 for r in result)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


# ================================================================ concurrent writers

_barrier = None


def _writer_init(barrier) -> None:
    global _barrier
    _barrier = barrier
    reference_env()
    import mlflow  # noqa: F401  (import before the clock starts)

    from sparkml_ops.tracking.store import DeltaTrackingStore  # noqa: F401


def _writer(kind: str, uri: str, run_id: str, points: int) -> dict[str, Any]:
    """Log ``points`` metric points to ``run_id`` in batches of 1,000, after all writers are ready."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri)
    ts = int(time.time() * 1000)
    batches = [[Metric("loss", float(s), ts, s) for s in range(lo, min(points, lo + 1000))]
               for lo in range(0, points, 1000)]
    errors: list[str] = []
    _barrier.wait()
    start = time.time()
    for batch in batches:
        try:
            client.log_batch(run_id, metrics=batch)
        except Exception as exc:  # the figure reports failures; it does not hide them
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    if kind == "ours":
        store = client._tracking_client.store
        store.flush()
        end = time.time()
        store.lake.close()
    else:
        end = time.time()
    return {"start": start, "end": end, "errors": len(errors), "first_error": errors[0] if errors else None}


def bench_concurrent(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    procs = sizes["processes"]
    ctx = spawn_context()
    barrier = ctx.Barrier(procs)
    rates, checks, errors = {}, {}, {}
    with ctx.Pool(procs, initializer=_writer_init, initargs=(barrier,)) as pool:
        for kind in KINDS:
            client = stores.client(kind, "concurrent")
            exp = client.create_experiment("concurrent")
            run_ids = [client.create_run(exp).info.run_id for _ in range(procs)]
            if kind == "ours":
                _ours_store(client).flush()
            points = sizes[kind]
            jobs = [pool.apply_async(_writer, (kind, stores.uri(kind, "concurrent"), r, points)) for r in run_ids]
            results = [j.get(timeout=600) for j in jobs]
            if kind == "ours":
                _ours_store(client).lake.close()  # so a WAL left behind can only be a writer's
            span = max(r["end"] for r in results) - min(r["start"] for r in results)
            rates[kind] = procs * points / span
            errors[kind] = {"failed_calls": sum(r["errors"] for r in results),
                            "first": next((r["first_error"] for r in results if r["first_error"]), None)}
            checks[kind] = _check_points(kind, stores, client, run_ids, points)
    emit("concurrent_writers_points_per_s", ours=rates["ours"], reference={k: rates[k] for k in REFS},
         unit="points/s", better="higher", target=TARGETS["concurrent_points_per_s"],
         n={"processes": procs, "points_per_process": {k: sizes[k] for k in KINDS}},
         exactly_once=checks, errors=errors,
         how=f"{procs} spawned processes, each log_batch-ing 1,000-point batches to its own run in one "
             "store, started together at a barrier; total points / wall time until the last one finished "
             "(ours: including its final commit); then every (run, step) is checked present exactly once "
             "(ours: read back with plain delta-rs)",
         **_size_note(quick))


def _check_points(kind: str, stores: Stores, client, run_ids: list[str], points: int) -> dict[str, Any]:
    expected = set(range(points))
    if kind == "ours":
        import pyarrow.compute as pc
        from deltalake import DeltaTable

        root = Path(stores.uri(kind, "concurrent")[len("delta:"):])
        table = DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table(columns=["run_id", "key", "step"])
        per_run = {}
        for run_id in run_ids:
            steps = table.filter(pc.equal(table.column("run_id"), run_id)).column("step").to_pylist()
            per_run[run_id] = steps
        leftover_wal = [p.name for p in (root / "_wal").iterdir()] if (root / "_wal").is_dir() else []
    else:
        per_run = {r: [m.step for m in client.get_metric_history(r, "loss")] for r in run_ids}
        leftover_wal = []
    present = sum(len(s) for s in per_run.values())
    duplicates = sum(len(s) - len(set(s)) for s in per_run.values())
    missing = sum(len(expected - set(s)) for s in per_run.values())
    return {"ok": duplicates == 0 and missing == 0 and not leftover_wal, "present": present,
            "expected": points * len(run_ids), "duplicates": duplicates, "missing": missing,
            "leftover_wal_dirs": len(leftover_wal)}


# ================================================================ a killed writer, seen by a live reader

def _acking_writer(uri: str, run_id: str, ack_path: str) -> None:
    """Log one step per call, writing each step to ``ack_path`` after its call returned."""
    reference_env()
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    with open(ack_path, "w") as ack:
        step = 0
        while True:
            client.log_metric(run_id, "loss", float(step), step=step)
            ack.write(f"{step}\n")
            ack.flush()
            step += 1


def _last_ack(path: Path) -> int:
    lines = path.read_text().split() if path.exists() else []
    return int(lines[-1]) if lines else -1


def bench_recovery(stores: Stores, sizes: dict[str, int], quick: bool) -> None:
    import os
    import signal

    visible_s, counts = {}, {}
    for kind in ("ours", "sqlite"):
        client = stores.client(kind, "recovery")
        run_id = client.create_run(client.create_experiment("recovery")).info.run_id
        client.get_metric_history(run_id, "loss")  # the reader has the root open before the writer starts
        ack = Path(stores.base) / f"recovery-{kind}.ack"
        writer = spawn_context().Process(target=_acking_writer, args=(stores.uri(kind, "recovery"), run_id, str(ack)))
        writer.start()
        while _last_ack(ack) < sizes[kind] and writer.is_alive():
            time.sleep(0.02)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        killed, last = time.perf_counter(), _last_ack(ack)
        while len(client.get_metric_history(run_id, "loss")) <= last and time.perf_counter() - killed < 120:
            time.sleep(0.05)
        visible_s[kind] = time.perf_counter() - killed
        counts[kind] = {"acknowledged": last + 1, "seen": len(client.get_metric_history(run_id, "loss"))}
    emit("killed_writer_visible_to_live_reader_s", ours=visible_s["ours"], reference={"sqlite": visible_s["sqlite"]},
         unit="s", better="lower", target=TARGETS["recovery_visible_s"], n=dict(sizes), counts=counts,
         how="a reader process has the root open; another process logs one metric step per call and is "
             "SIGKILLed after n acknowledged steps; time from the kill until the reader's get_metric_history "
             "holds every acknowledged step (SQLite commits each call, so it sees them at once)",
         **_size_note(quick))


# ================================================================ main

def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, GROUPS)
    reference_env()
    sizes = SIZES["quick" if args.quick else "full"]
    runners = {
        "log_metric": bench_log_metric, "log_batch": bench_log_batch, "log_table": bench_log_table,
        "create_runs": bench_create_runs,
        "metric_history": bench_metric_history, "search": bench_search, "concurrent": bench_concurrent,
        "recovery": bench_recovery,
    }
    with workdir(args.workdir) as base:
        stores = Stores(base)
        try:
            for group in args.only:
                started = time.perf_counter()
                runners[group](stores, sizes[group], args.quick)
                print(f"# {group}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        finally:
            stores.close_ours()
    return 0


if __name__ == "__main__":
    sys.exit(main())
