"""A tracking root of N runs written straight into its Delta tables, cached on disk.

1,000,000 runs through ``create_run`` would take hours; this writes the same rows the store
API writes (``create_run`` + ``log_batch`` + ``set_terminated``: one runs row, 20 params,
10 metrics, 5 tags and ``mlflow.runName`` per run) as Arrow tables through the lake's own
committer (one Delta commit per table per chunk of runs), in a minute or two. The values are
:class:`RunsDataset`'s, so the answer of every search is known from numpy.

Run ``i`` belongs to experiment ``i // runs_per_experiment`` (each experiment one block of
runs, as runs are usually logged).

The root is kept under ``/tmp/sparkml-ops-scale/`` keyed by its size and this module's
``LAYOUT`` (bump it when the rows change); a finished root has a ``_bench_done`` file.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _tracking_data import (
    METRIC_KEYS,
    N_METRICS,
    N_PARAMS,
    N_TAGS,
    PARAM_KEYS,
    PARAM_VALUES,
    TAG_KEYS,
    TAG_VALUES,
    RunsDataset,
)

LAYOUT = 1
CACHE = Path("/tmp/sparkml-ops-scale")
CHUNK = 100_000
DONE = "_bench_done"


def run_ids(n: int, seed: int = 11) -> np.ndarray:
    """``n`` distinct 32-hex run ids (random order, like uuid4 hex)."""
    rng = np.random.default_rng(seed)
    halves = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    return np.array([f"{a:016x}{b:016x}" for a, b in halves.tolist()], dtype=object)


def scale_root(n: int, runs_per_experiment: int, *, cache: Path = CACHE) -> tuple[Path, dict]:
    """(root directory, description) of a root with ``n`` runs, built once and reused."""
    root = cache / f"runs-{n}-per-{runs_per_experiment}-v{LAYOUT}"
    done = root / DONE
    if done.is_file():
        return root, json.loads(done.read_text())
    if root.exists():
        shutil.rmtree(root)  # an unfinished earlier build
    root.parent.mkdir(parents=True, exist_ok=True)
    info = _build(root, n, runs_per_experiment)
    done.write_text(json.dumps(info))
    return root, info


def _build(root: Path, n: int, per_exp: int) -> dict:
    from sparkml_ops.lake import Lake
    from sparkml_ops.lake.columns import columns_to_table
    from sparkml_ops.lake.schemas import TABLES
    from sparkml_ops.tracking.store import DeltaTrackingStore

    began = time.perf_counter()
    store = DeltaTrackingStore(f"delta:{root}")
    n_exps = -(-n // per_exp)
    exp_ids = [store.create_experiment(f"scale-{e}") for e in range(n_exps)]
    locations = [store.get_experiment(e).artifact_location.rstrip("/") for e in exp_ids]
    store.flush()
    lake: Lake = store.lake
    data = RunsDataset.make(n)
    ids = run_ids(n)
    committer, writer_id = lake.committer, "bench-scale-generator"
    for lsn, lo in enumerate(range(0, n, CHUNK), start=1):
        hi = min(n, lo + CHUNK)
        m = hi - lo
        rid = pa.array(ids[lo:hi], pa.string())
        exp_of = np.arange(lo, hi) // per_exp
        starts = np.array([data.start_time(i) for i in range(lo, hi)], dtype=np.int64)
        names = pa.array([data.run_name(i) for i in range(lo, hi)], pa.string())
        artifact = pa.array([f"{locations[e]}/{r}/artifacts" for e, r in zip(exp_of.tolist(), ids[lo:hi],
                                                                              strict=True)], pa.string())
        per_row = {
            "runs": {
                "run_id": rid, "experiment_id": pa.array([exp_ids[e] for e in exp_of.tolist()], pa.string()),
                "run_name": names, "user_id": pa.array(["unknown"] * m, pa.string()),
                "status": pa.array(["FINISHED"] * m, pa.string()), "start_time": pa.array(starts),
                "end_time": pa.array(starts + 5), "lifecycle_stage": pa.array(["active"] * m, pa.string()),
                "artifact_uri": artifact, "deleted_time": pa.nulls(m, pa.int64()),
            },
            "params": {
                "run_id": rid.take(np.repeat(np.arange(m), N_PARAMS)),
                "key": pa.array(np.tile(np.array(PARAM_KEYS, dtype=object), m), pa.string()),
                "value": pa.array(PARAM_VALUES[data.param_idx[lo:hi]].ravel(), pa.string()),
            },
            "metrics": {
                "run_id": rid.take(np.repeat(np.arange(m), N_METRICS)),
                "key": pa.array(np.tile(np.array(METRIC_KEYS, dtype=object), m), pa.string()),
                "value": pa.array(data.metric_values[lo:hi].ravel()),
                "timestamp": pa.array(np.repeat(starts + 1, N_METRICS)),
                "step": pa.array(np.zeros(m * N_METRICS, dtype=np.int64)),
                "model_id": pa.nulls(m * N_METRICS, pa.string()),
                "dataset_name": pa.nulls(m * N_METRICS, pa.string()),
                "dataset_digest": pa.nulls(m * N_METRICS, pa.string()),
            },
            "tags": {
                "run_id": rid.take(np.repeat(np.arange(m), N_TAGS + 1)),
                "key": pa.array(np.tile(np.array(TAG_KEYS + ["mlflow.runName"], dtype=object), m), pa.string()),
                "value": pa.array(np.concatenate([TAG_VALUES[data.tag_idx[lo:hi]],
                                                  np.array(names.to_pylist(), dtype=object)[:, None]],
                                                 axis=1).ravel(), pa.string()),
                "deleted": pa.array(np.zeros(m * (N_TAGS + 1), dtype=bool)),
            },
        }
        stamp = lake.stamp()
        for table, columns in per_row.items():
            rows = len(next(iter(columns.values())))
            columns["seq"] = pa.array(np.full(rows, stamp, dtype=np.int64))
            committer.append(TABLES[table], columns_to_table(table, [columns]), writer_id, lsn)
    lake.close()
    return {"n": n, "runs_per_experiment": per_exp, "experiments": exp_ids, "build_s": time.perf_counter() - began,
            "run_ids_seed": 11}


def scale_sqlite(n: int, runs_per_experiment: int, *, cache: Path = CACHE) -> tuple[Path, dict]:
    """MLflow's SQLite store holding the same runs as :func:`scale_root` (same experiments split,
    same values), built once by ``build_sqlite_bulk`` and reused."""
    db = cache / f"sqlite-{n}-per-{runs_per_experiment}-v{LAYOUT}.db"
    done = db.with_suffix(".done")
    if done.is_file():
        return db, json.loads(done.read_text())
    from _tracking_data import _dispose_sqlalchemy_engines, build_sqlite_bulk, sqlite_template
    from mlflow import MlflowClient

    began = time.perf_counter()
    db.unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    sqlite_template(Path("~/.cache/sparkml_ops/bench").expanduser(), db)
    client = MlflowClient(f"sqlite:///{db}")
    data = RunsDataset.make(n)
    exp_ids = []
    for e, lo in enumerate(range(0, n, runs_per_experiment)):
        exp_ids.append(client.create_experiment(f"scale-{e}"))
        build_sqlite_bulk(client, db, exp_ids[-1], data, lo, min(n, lo + runs_per_experiment))
    _dispose_sqlalchemy_engines()
    info = {"n": n, "runs_per_experiment": runs_per_experiment, "experiments": exp_ids,
            "build_s": time.perf_counter() - began}
    done.write_text(json.dumps(info))
    return db, info
