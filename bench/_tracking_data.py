"""Synthetic runs for the tracking benchmarks, and the three ways they get into a store.

Every run has 35 values — 20 params, 10 metrics, 5 tags — plus the ``mlflow.runName`` tag
``create_run`` adds. Values come from seeded generators, one per array, so the first N
runs are the same whatever the total: a 1,000-run store of ours and MLflow's 1,000-run file
store hold the same data, and every store's search answer can be checked against the one
numpy computes from the arrays.

Builders:
- :func:`build_via_api` — ``MlflowClient`` calls, run by run (any store; how users log).
- :func:`build_ours_bulk` — our store's own write path (``Lake.append``: WAL + group commit)
  in columnar chunks, writing exactly the rows the store API writes, for 100,000 runs.
- :func:`build_sqlite_bulk` — MLflow's SQLite schema filled by ``executemany`` from one
  template run logged through the API (so every column is what MLflow itself writes).
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_PARAMS, N_METRICS, N_TAGS = 20, 10, 5
BASE_TS = 1_700_000_000_000
PARAM_KEYS = [f"p{j}" for j in range(N_PARAMS)]
METRIC_KEYS = [f"m{j}" for j in range(N_METRICS)]
TAG_KEYS = [f"t{j}" for j in range(N_TAGS)]
PARAM_VALUES = np.array([f"v{k}" for k in range(10)], dtype=object)
TAG_VALUES = np.array([f"tag-value-{k}" for k in range(4)], dtype=object)

# The query every store answers: ~5 % of runs match, ordered by another metric.
FILTER = "params.p0 = 'v3' and metrics.m0 > 0.5"
ORDER_BY = ["metrics.m1 DESC"]
TOP = 100


@dataclass(frozen=True)
class RunsDataset:
    n: int
    param_idx: np.ndarray  # (n, 20) indexes into PARAM_VALUES
    metric_values: np.ndarray  # (n, 10) floats in [0, 1)
    tag_idx: np.ndarray  # (n, 5) indexes into TAG_VALUES

    @classmethod
    def make(cls, n: int, seed: int = 7) -> RunsDataset:
        streams = [np.random.default_rng([seed, k]) for k in range(3)]
        return cls(
            n,
            streams[0].integers(0, len(PARAM_VALUES), size=(n, N_PARAMS), dtype=np.int8),
            streams[1].random((n, N_METRICS)),
            streams[2].integers(0, len(TAG_VALUES), size=(n, N_TAGS), dtype=np.int8),
        )

    @staticmethod
    def run_name(i: int) -> str:
        return f"run-{i:06d}"

    @staticmethod
    def start_time(i: int) -> int:
        return BASE_TS + 10 * i

    def entities(self, i: int) -> tuple[list, list, list]:
        """(metrics, params, tags) of run ``i`` as MLflow entities, ready for ``log_batch``."""
        from mlflow.entities import Metric, Param, RunTag

        ts = self.start_time(i) + 1
        metrics = [Metric(k, float(v), ts, 0) for k, v in zip(METRIC_KEYS, self.metric_values[i], strict=True)]
        params = [Param(k, PARAM_VALUES[v]) for k, v in zip(PARAM_KEYS, self.param_idx[i], strict=True)]
        tags = [RunTag(k, TAG_VALUES[v]) for k, v in zip(TAG_KEYS, self.tag_idx[i], strict=True)]
        return metrics, params, tags

    def expected_top(self, start: int, stop: int) -> list[str]:
        """Run names ``FILTER`` + ``ORDER_BY`` + top ``TOP`` must return over runs [start, stop)."""
        p0 = self.param_idx[start:stop, 0]
        m0, m1 = self.metric_values[start:stop, 0], self.metric_values[start:stop, 1]
        hits = np.flatnonzero((PARAM_VALUES[p0] == "v3") & (m0 > 0.5))
        best = hits[np.argsort(-m1[hits], kind="stable")][:TOP]
        return [self.run_name(start + int(i)) for i in best]


# -- through the API ---------------------------------------------------------------------

def build_via_api(client, experiment_id: str, data: RunsDataset, start: int, stop: int) -> None:
    """Runs [start, stop) logged the way a user logs them: create, one log_batch, terminate."""
    for i in range(start, stop):
        run = client.create_run(experiment_id, start_time=data.start_time(i), run_name=data.run_name(i))
        metrics, params, tags = data.entities(i)
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id, end_time=data.start_time(i) + 5)


# -- ours, in bulk through the lake --------------------------------------------------------

def build_ours_bulk(store, experiment_id: str, data: RunsDataset, start: int, stop: int,
                    chunk: int = 5_000) -> None:
    """Runs [start, stop) as the rows ``create_run`` + ``log_batch`` + ``set_terminated`` write.

    Goes through ``Lake.append`` (write-ahead log, then group commit), in columnar chunks.
    """
    lake = store.lake
    location = store.get_experiment(experiment_id).artifact_location.rstrip("/")
    for lo in range(start, stop, chunk):
        hi = min(stop, lo + chunk)
        n = hi - lo
        ids = [uuid.uuid4().hex for _ in range(n)]
        names = [data.run_name(i) for i in range(lo, hi)]
        starts = [data.start_time(i) for i in range(lo, hi)]
        lake.append("runs", {
            "run_id": ids, "experiment_id": [experiment_id] * n, "run_name": names,
            "user_id": ["unknown"] * n, "status": ["FINISHED"] * n, "start_time": starts,
            "end_time": [s + 5 for s in starts], "lifecycle_stage": ["active"] * n,
            "artifact_uri": [f"{location}/{rid}/artifacts" for rid in ids], "deleted_time": [None] * n,
        })
        lake.append("params", {
            "run_id": np.repeat(np.array(ids, dtype=object), N_PARAMS).tolist(),
            "key": PARAM_KEYS * n,
            "value": PARAM_VALUES[data.param_idx[lo:hi]].ravel().tolist(),
        })
        lake.append("metrics", {
            "run_id": np.repeat(np.array(ids, dtype=object), N_METRICS).tolist(),
            "key": METRIC_KEYS * n,
            "value": data.metric_values[lo:hi].ravel().tolist(),
            "timestamp": np.repeat(np.array(starts) + 1, N_METRICS).tolist(),
            "step": [0] * (n * N_METRICS),
        })
        tag_values = np.concatenate(
            [TAG_VALUES[data.tag_idx[lo:hi]], np.array(names, dtype=object)[:, None]], axis=1
        )
        lake.append("tags", {
            "run_id": np.repeat(np.array(ids, dtype=object), N_TAGS + 1).tolist(),
            "key": (TAG_KEYS + ["mlflow.runName"]) * n,
            "value": tag_values.ravel().tolist(),
            "deleted": [False] * (n * (N_TAGS + 1)),
        })
    store.flush()


# -- MLflow's SQLite store, in bulk from a template run ------------------------------------

_EXPECTED_ROWS = {"runs": 1, "params": N_PARAMS, "metrics": N_METRICS, "latest_metrics": N_METRICS,
                  "tags": N_TAGS + 1}


def build_sqlite_bulk(client, db_path: Path, experiment_id: str, data: RunsDataset, start: int, stop: int) -> None:
    """Run ``start`` through the API, runs (start, stop) copied from it with their own values.

    Refuses to go on if the template run wrote rows anywhere this builder does not fill.
    """
    build_via_api(client, experiment_id, data, start, start + 1)
    con = sqlite3.connect(db_path)
    try:
        template_id = con.execute("SELECT run_uuid FROM runs WHERE name = ?", (data.run_name(start),)).fetchone()[0]
        templates = _template_rows(con, template_id)
        runs_cols, run_row = templates["runs"][0], dict(zip(templates["runs"][0], templates["runs"][1][0], strict=True))
        rows: dict[str, list[tuple]] = {t: [] for t in _EXPECTED_ROWS}
        for i in range(start + 1, stop):
            rid = uuid.uuid4().hex
            values = dict(run_row, run_uuid=rid, name=data.run_name(i), start_time=data.start_time(i),
                          end_time=data.start_time(i) + 5,
                          artifact_uri=run_row["artifact_uri"].replace(template_id, rid))
            rows["runs"].append(tuple(values[c] for c in runs_cols))
            ts = data.start_time(i) + 1
            for key, v in zip(PARAM_KEYS, data.param_idx[i], strict=True):
                rows["params"].append(_ordered(templates["params"][0], key=key, value=PARAM_VALUES[v], run_uuid=rid))
            for key, v in zip(METRIC_KEYS, data.metric_values[i], strict=True):
                fields = {"key": key, "value": float(v), "timestamp": ts, "step": 0, "is_nan": 0, "run_uuid": rid}
                rows["metrics"].append(_ordered(templates["metrics"][0], **fields))
                rows["latest_metrics"].append(_ordered(templates["latest_metrics"][0], **fields))
            for key, v in zip(TAG_KEYS, data.tag_idx[i], strict=True):
                rows["tags"].append(_ordered(templates["tags"][0], key=key, value=TAG_VALUES[v], run_uuid=rid))
            rows["tags"].append(_ordered(templates["tags"][0], key="mlflow.runName", value=data.run_name(i),
                                         run_uuid=rid))
        with con:
            for table in ("runs", "params", "metrics", "latest_metrics", "tags"):
                columns = templates[table][0]
                marks = ", ".join("?" * len(columns))
                con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[table])
    finally:
        con.close()


def _template_rows(con: sqlite3.Connection, run_id: str) -> dict[str, tuple[list[str], list[tuple]]]:
    found = {}
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        columns = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
        id_column = "run_uuid" if "run_uuid" in columns else "run_id" if "run_id" in columns else None
        if id_column is None:
            continue
        rows = con.execute(f"SELECT * FROM {table} WHERE {id_column} = ?", (run_id,)).fetchall()
        if rows and table not in _EXPECTED_ROWS:
            raise RuntimeError(f"template run wrote to table {table!r}, which the bulk builder does not fill")
        if table in _EXPECTED_ROWS:
            if len(rows) != _EXPECTED_ROWS[table]:
                raise RuntimeError(f"template run has {len(rows)} rows in {table!r}, expected {_EXPECTED_ROWS[table]}")
            found[table] = (columns, rows)
    return found


def _ordered(columns: list[str], **fields: object) -> tuple:
    return tuple(fields[c] for c in columns)


def sqlite_template(cache_dir: Path, target: Path) -> Path:
    """A migrated, empty MLflow SQLite database at ``target``.

    Running MLflow's migrations takes ~10 s here, so one migrated copy per MLflow version is
    kept in ``cache_dir`` and copied.
    """
    import mlflow
    from mlflow import MlflowClient

    cached = cache_dir / f"mlflow-{mlflow.__version__}-empty.db"
    if not cached.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        building = cached.with_suffix(f".building-{uuid.uuid4().hex[:8]}")
        MlflowClient(f"sqlite:///{building}").search_experiments()
        _dispose_sqlalchemy_engines()
        building.replace(cached)
    shutil.copyfile(cached, target)
    return target


def _dispose_sqlalchemy_engines() -> None:
    """Let go of MLflow's cached SQLite engines so their files can be moved."""
    try:
        from mlflow.tracking._tracking_service import utils

        utils._tracking_store_registry._get_store_with_resolved_uri.cache_clear()
    except Exception:  # only hygiene: the copy works with the engine open too
        pass
