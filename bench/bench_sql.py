"""SQL over the run tables: "top 10 runs by a metric with two param filters", three ways.

    python bench/bench_sql.py [--quick] [--only embedded,spark,mlflow] [--runs N] [--steps N] [--workdir DIR]

Data: N runs (100,000; --quick 2,000) x 20 params, 10 metrics x S steps (100; --quick 10),
written in bulk through the lake's committer (the idempotent Delta appends group commit uses).
The question, as SQL (the same text in both engines):

    SELECT run_id, params['lr'] AS lr, metrics['auc'] AS auc FROM runs_wide
    WHERE experiment_name = 'bench-sql' AND params['optimizer'] = 'adam' AND params['layers'] = '3'
    ORDER BY auc DESC LIMIT 10

(a) embedded SQL (``sparkml_ops.sql.query``): cold (a fresh process: reading the snapshot and
    building the views), warm (cached views), and after one more run was logged (refresh);
(b) Spark SQL over ``register_views`` (local[2]): registration, a query, and (full size only)
    a query over ``cache=True`` views once the cache is built;
(c) the reference, what an MLflow user runs today: ``mlflow.search_runs`` with the same filter,
    order and limit into pandas, on MLflow's SQLite store holding the same runs, params and
    latest metrics (its metric history holds only the latest point per key: ``search_runs``
    reads ``latest_metrics`` and never the history, and 100 M history rows do not fit the time).

All three must return the same ten run ids; ``answers_agree`` says whether they did.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, median, reference_env, run_isolated, stopwatch, workdir  # noqa: E402

GROUPS = ("embedded", "spark", "mlflow")
SIZES = {"full": {"runs": 100_000, "steps": 100}, "quick": {"runs": 2_000, "steps": 10}}
N_PARAMS, N_METRICS = 20, 10
EXPERIMENT = "bench-sql"
OPTIMIZERS = np.array(["adam", "sgd", "rmsprop"], dtype=object)
PARAM_KEYS = ["optimizer", "layers", "lr"] + [f"p{j}" for j in range(3, N_PARAMS)]
METRIC_KEYS = ["auc", "loss"] + [f"m{j}" for j in range(2, N_METRICS)]
BASE_TS = 1_700_000_000_000
CHUNK_RUNS = 10_000
SQL = ("SELECT run_id, params['lr'] AS lr, metrics['auc'] AS auc FROM runs_wide "
       f"WHERE experiment_name = '{EXPERIMENT}' AND params['optimizer'] = 'adam' AND params['layers'] = '3' "
       "ORDER BY auc DESC LIMIT 10")
FILTER = "params.optimizer = 'adam' and params.layers = '3'"
CACHE_DIR = Path("~/.cache/sparkml_ops/bench").expanduser()


# -- the data ------------------------------------------------------------------------------------

class Data:
    """Seeded values; run i's latest metric value is the one at its last step."""

    def __init__(self, runs: int, steps: int, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self.runs, self.steps = runs, steps
        salt = uuid.UUID(int=seed).hex[:24]
        self.run_ids = np.array([f"{salt}{i:08x}" for i in range(runs)], dtype=object)
        params = np.empty((runs, N_PARAMS), dtype=object)
        params[:, 0] = OPTIMIZERS[rng.integers(0, 3, runs)]
        params[:, 1] = rng.integers(1, 5, runs).astype(str)
        params[:, 2] = np.char.mod("%.5f", rng.random(runs))
        params[:, 3:] = np.char.mod("v%d", rng.integers(0, 10, (runs, N_PARAMS - 3)))
        self.params = params
        self.final = rng.random((runs, N_METRICS))  # latest value of each metric
        self.rng = rng

    def start(self, lo: int, hi: int) -> np.ndarray:
        return BASE_TS + np.arange(lo, hi, dtype=np.int64) * 1_000

    def expected_top(self) -> list[str]:
        hits = np.flatnonzero((self.params[:, 0] == "adam") & (self.params[:, 1] == "3"))
        best = hits[np.argsort(-self.final[hits, 0], kind="stable")][:10]
        return [self.run_ids[i] for i in best]


def build_ours(root: Path, data: Data) -> dict[str, float]:
    """The runs in bulk through the lake's committer: Arrow chunks, one idempotent Delta append each."""
    import pyarrow as pa

    from sparkml_ops.lake.schemas import TABLES
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = DeltaTrackingStore(f"delta:{root}")
    experiment_id = store.create_experiment(EXPERIMENT)
    store.flush()
    artifacts = store.get_experiment(experiment_id).artifact_location.rstrip("/")
    writer, lsn, seq = f"bench-sql-{uuid.uuid4().hex[:8]}", 0, time.time_ns()
    steps = data.steps
    for lo in range(0, data.runs, CHUNK_RUNS):
        hi = min(data.runs, lo + CHUNK_RUNS)
        n, ids, start = hi - lo, data.run_ids[lo:hi], data.start(lo, hi)
        names = np.char.mod("run-%06d", np.arange(lo, hi)).astype(object)
        tables = {
            "runs": {"run_id": ids, "experiment_id": [experiment_id] * n, "run_name": names, "user_id": ["bench"] * n,
                     "status": ["FINISHED"] * n, "start_time": start, "end_time": start + 500,
                     "lifecycle_stage": ["active"] * n, "artifact_uri": [f"{artifacts}/{r}/artifacts" for r in ids],
                     "deleted_time": pa.nulls(n, pa.int64())},
            "params": {"run_id": np.repeat(ids, N_PARAMS), "key": np.tile(np.array(PARAM_KEYS, dtype=object), n),
                       "value": data.params[lo:hi].ravel()},
            "tags": {"run_id": ids, "key": ["mlflow.runName"] * n, "value": names, "deleted": [False] * n},
        }
        m = n * N_METRICS * steps
        history = data.rng.random((n, N_METRICS, steps))
        history[:, :, -1] = data.final[lo:hi]
        tables["metrics"] = {
            "run_id": np.repeat(ids, N_METRICS * steps),
            "key": np.tile(np.repeat(np.array(METRIC_KEYS, dtype=object), steps), n),
            "value": history.ravel(),
            "timestamp": np.repeat(start, N_METRICS * steps) + np.tile(np.arange(steps), n * N_METRICS),
            "step": np.tile(np.arange(steps, dtype=np.int64), n * N_METRICS),
            "model_id": pa.nulls(m, pa.string()), "dataset_name": pa.nulls(m, pa.string()),
            "dataset_digest": pa.nulls(m, pa.string()),
        }
        for name, columns in tables.items():
            rows = len(columns["run_id"])
            columns["seq"] = np.full(rows, seq + lsn, dtype=np.int64)
            lsn += 1
            store.lake.committer.append(TABLES[name], pa.table(columns, schema=TABLES[name].schema), writer, lsn)
    store.lake.close()
    return {"metric_rows": data.runs * N_METRICS * steps, "param_rows": data.runs * N_PARAMS}


def append_one_run(root: str, run_id: str, steps: int) -> None:
    """One more finished run (params, metrics), as a separate commit per table."""
    import pyarrow as pa

    from sparkml_ops.lake.commit import TableCommitter
    from sparkml_ops.lake.location import parse_root
    from sparkml_ops.lake.schemas import TABLES

    location = parse_root(root)
    committer, writer, seq = TableCommitter(location), f"bench-late-{uuid.uuid4().hex[:8]}", time.time_ns()
    experiment = _experiment_id(root)
    rows = {
        "runs": {"run_id": [run_id], "experiment_id": [experiment], "run_name": ["late"], "user_id": ["bench"],
                 "status": ["FINISHED"], "start_time": [BASE_TS], "end_time": [BASE_TS + 1],
                 "lifecycle_stage": ["active"], "artifact_uri": ["x"], "deleted_time": [None]},
        "params": {"run_id": [run_id] * 3, "key": ["optimizer", "layers", "lr"], "value": ["adam", "3", "0.5"]},
        "metrics": {"run_id": [run_id] * steps, "key": ["auc"] * steps, "value": [0.5] * (steps - 1) + [2.0],
                    "timestamp": list(range(steps)), "step": list(range(steps))},
    }
    for lsn, (name, columns) in enumerate(rows.items(), start=1):
        n = len(columns["run_id"])
        full = {f: columns.get(f, [None] * n) for f in TABLES[name].schema.names}
        full["seq"] = [seq] * n
        committer.append(TABLES[name], pa.table(full, schema=TABLES[name].schema), writer, lsn)


def _experiment_id(root: str) -> str:
    from sparkml_ops import sql

    return sql.query(f"SELECT experiment_id FROM experiments WHERE name = '{EXPERIMENT}'", root).column(0)[0].as_py()


# -- (a) embedded ---------------------------------------------------------------------------------

def embedded_child(root: str, steps: int) -> dict:
    """In a fresh process: cold query, warm queries, then a query after one more run was logged."""
    from sparkml_ops import sql

    with stopwatch() as cold:
        first = sql.query(SQL, root)
    warm = []
    for _ in range(7):
        with stopwatch() as t:
            again = sql.query(SQL, root)
        warm.append(t["s"])
    late = "f" * 32
    append_one_run(root, late, steps)
    with stopwatch() as refresh:
        after = sql.query(SQL, root)
    with stopwatch() as warm_after:
        sql.query(SQL, root)
    return {"cold_s": cold["s"], "warm_ms": [w * 1000 for w in warm], "refresh_s": refresh["s"],
            "warm_after_refresh_ms": warm_after["s"] * 1000, "top": first.column("run_id").to_pylist(),
            "top_again": again.column("run_id").to_pylist(), "late_first": after.column("run_id")[0].as_py() == late}


# -- (b) Spark ------------------------------------------------------------------------------------

def spark_child(root: str, quick: bool) -> dict:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from sparkml_ops import sql

    with stopwatch() as startup:
        spark = (SparkSession.builder.master("local[2]").appName("bench-sql").config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "6g")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.pyspark.python", sys.executable).getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
    try:
        registers = []
        for _ in range(1 if quick else 2):
            with stopwatch() as reg:
                sql.register_views(spark, root)
            registers.append(reg["s"])
        with stopwatch() as plain:
            top = [r.run_id for r in spark.sql(SQL).collect()]
        result = {"startup_s": startup["s"], "register_s": registers, "query_s": plain["s"], "top": top,
                  "top_cached": top, "cache_build_s": None, "cached_query_s": None}
        if quick:  # the cached variant is a full-size figure; --quick keeps under a minute
            return result
        sql.register_views(spark, root, cache=True)
        with stopwatch() as build:
            spark.sql(SQL).collect()
        cached = []
        for _ in range(3):
            with stopwatch() as t:
                result["top_cached"] = [r.run_id for r in spark.sql(SQL).collect()]
            cached.append(t["s"])
        result.update(cache_build_s=build["s"], cached_query_s=median(cached))
        return result
    finally:
        spark.stop()


# -- (c) MLflow's SQLite store ----------------------------------------------------------------------

def build_sqlite(db: Path, data: Data) -> int:
    """MLflow's schema, filled by executemany from a template run MLflow itself logged."""
    from _tracking_data import sqlite_template
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    sqlite_template(CACHE_DIR, db)
    client = MlflowClient(f"sqlite:///{db}")
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=str(db.parent / "mlruns"))
    template = client.create_run(experiment_id, run_name="template", start_time=BASE_TS)
    client.log_batch(template.info.run_id, params=[Param(k, "x") for k in PARAM_KEYS],
                     metrics=[Metric(k, 0.0, BASE_TS, 0) for k in METRIC_KEYS])
    client.set_terminated(template.info.run_id, end_time=BASE_TS + 1)
    client.delete_run(template.info.run_id)
    con = sqlite3.connect(db)
    try:
        tid = template.info.run_id
        cols = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
                for t in ("runs", "params", "tags", "metrics", "latest_metrics")}
        run_row = dict(zip(cols["runs"], con.execute("SELECT * FROM runs WHERE run_uuid = ?", (tid,)).fetchone(),
                           strict=True))
        tag_row = dict(zip(cols["tags"], con.execute("SELECT * FROM tags WHERE run_uuid = ? AND key = "
                                                     "'mlflow.runName'", (tid,)).fetchone(), strict=True))
        rows: dict[str, list[tuple]] = {t: [] for t in cols}
        starts = data.start(0, data.runs)
        for i in range(data.runs):
            rid, start = data.run_ids[i], int(starts[i])
            values = dict(run_row, run_uuid=rid, name=f"run-{i:06d}", start_time=start, end_time=start + 500,
                          lifecycle_stage="active", deleted_time=None,
                          artifact_uri=run_row["artifact_uri"].replace(tid, rid))
            rows["runs"].append(tuple(values[c] for c in cols["runs"]))
            rows["tags"].append(tuple(dict(tag_row, run_uuid=rid, value=f"run-{i:06d}")[c] for c in cols["tags"]))
            rows["params"].extend(tuple({"key": k, "value": v, "run_uuid": rid}[c] for c in cols["params"])
                                  for k, v in zip(PARAM_KEYS, data.params[i], strict=True))
            ts, step = start + data.steps - 1, data.steps - 1
            for k, v in zip(METRIC_KEYS, data.final[i], strict=True):
                point = {"key": k, "value": float(v), "timestamp": ts, "step": step, "is_nan": 0, "run_uuid": rid}
                rows["metrics"].append(tuple(point[c] for c in cols["metrics"]))
                rows["latest_metrics"].append(tuple(point[c] for c in cols["latest_metrics"]))
        with con:
            for table, table_rows in rows.items():
                marks = ", ".join("?" * len(cols[table]))
                con.executemany(f"INSERT INTO {table} ({', '.join(cols[table])}) VALUES ({marks})", table_rows)
    finally:
        con.close()
    return data.runs


def mlflow_child(db: str) -> dict:
    """mlflow.search_runs into pandas: the first call (opens the store) and three more."""
    reference_env()
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")

    def ask():
        return mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=FILTER,
                                  order_by=["metrics.auc DESC"], max_results=10)

    with stopwatch() as first:
        frame = ask()
    times = []
    for _ in range(3):
        with stopwatch() as t:
            ask()
        times.append(t["s"])
    return {"first_s": first["s"], "times_s": times, "top": frame["run_id"].tolist()}


# -- main -----------------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 runs x 10 steps (finishes in < 60 s)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(GROUPS)}")
    parser.add_argument("--runs", type=int, help="number of runs (default 100,000; --quick 2,000)")
    parser.add_argument("--steps", type=int, help="steps per metric (default 100; --quick 10)")
    parser.add_argument("--workdir", help="directory for the stores (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    chosen = [g.strip() for g in args.only.split(",") if g.strip()] or list(GROUPS)
    if set(chosen) - set(GROUPS):
        parser.error(f"--only names unknown groups {sorted(set(chosen) - set(GROUPS))}; choose from {GROUPS}")
    args.only = chosen
    size = SIZES["quick" if args.quick else "full"]
    args.runs = args.runs or size["runs"]
    args.steps = args.steps or size["steps"]
    if args.runs < 20 or args.steps < 1:
        parser.error("--runs must be >= 20 and --steps >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    reference_env()
    data = Data(args.runs, args.steps)
    expected = data.expected_top()
    sizes = {"runs": args.runs, "params_per_run": N_PARAMS, "metrics_per_run": N_METRICS, "steps": args.steps}
    with workdir(args.workdir) as base:
        root = base / "lake"
        with stopwatch() as built:
            rows = build_ours(root, data)
        print(f"# built ours: {built['s']:.1f} s, {rows}", file=sys.stderr, flush=True)
        ref = None
        if "mlflow" in args.only:
            with stopwatch() as ref_built:
                build_sqlite(base / "mlflow.db", data)
            print(f"# built MLflow SQLite: {ref_built['s']:.1f} s", file=sys.stderr, flush=True)
            ref = run_isolated(mlflow_child, str(base / "mlflow.db"))
        ref_ms = median(ref["times_s"]) * 1000 if ref else None
        reference = {"mlflow_search_runs_sqlite": ref_ms}
        agree = {"expected": expected, "mlflow": ref["top"] == expected if ref else None}
        common = {"n": sizes, "reference_detail": ref and {"first_call_ms": ref["first_s"] * 1000,
                                                           "metric_history_rows": args.runs * N_METRICS}}
        if "embedded" in args.only:
            emb = run_isolated(embedded_child, str(root), args.steps)
            late = ["f" * 32] if emb["late_first"] else []
            agree["embedded"] = emb["top"] == expected and emb["top_again"] == expected
            warm = median(emb["warm_ms"])
            emit("sql_top10_embedded_warm_ms", ours=warm, reference=reference, unit="ms", better="lower",
                 target=300.0, cold_s=emb["cold_s"], refresh_after_new_run_s=emb["refresh_s"],
                 warm_after_refresh_ms=emb["warm_after_refresh_ms"], late_run_seen=emb["late_first"],
                 answers_agree=agree["embedded"] and agree["mlflow"] is not False,
                 target_speedup=20, **common)
            emit("sql_top10_embedded_cold_ms", ours=emb["cold_s"] * 1000, reference=reference, unit="ms",
                 better="lower", note="fresh process: reads the snapshot and builds every view", **common)
        if "spark" in args.only:
            sp = run_isolated(spark_child, str(root), args.quick)
            now = (late + expected)[:10] if "embedded" in args.only else expected  # the embedded run added one
            agree["spark"] = sp["top"] == now and sp["top_cached"] == now
            emit("sql_top10_spark_ms", ours=sp["query_s"] * 1000, reference=reference, unit="ms", better="lower",
                 cached_views_query_ms=sp["cached_query_s"] and sp["cached_query_s"] * 1000,
                 cache_build_ms=sp["cache_build_s"] and sp["cache_build_s"] * 1000,
                 answers_agree=agree["spark"] and agree["mlflow"] is not False, **common)
            emit("spark_register_views_s", ours=median(sp["register_s"]), reference={}, unit="s", better="lower",
                 first_registration_s=sp["register_s"][0], spark_startup_s=sp["startup_s"], n=sizes)
        if not all(v is not False for k, v in agree.items() if k != "expected"):
            print(f"# answers differ: {agree}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
