"""SIGKILL a logging process: every acknowledged value survives exactly once."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pyarrow.compute as pc
from deltalake import DeltaTable


def _logger(uri: str, run_id: str, ack_path: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    with open(ack_path, "w") as ack:
        step = 0
        while True:
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            ack.write(f"{step}\n")  # written only after the call returned (acknowledged)
            ack.flush()
            step += 1


def _acked(path: Path) -> int:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return int(lines[-1]) if lines else -1


def test_sigkill_loses_nothing_acknowledged_and_applies_nothing_twice(tracking_uri, root, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from sparkml_ops.lake import Lake, parse_root

    client = MlflowClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    client._tracking_client.store.flush()
    ack = tmp_path / "acked.txt"
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_logger, args=(tracking_uri, run_id, str(ack)))
    child.start()
    deadline = time.time() + 60
    while time.time() < deadline and (not ack.exists() or _acked(ack) < 3000):
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # mid-stream: some rows committed, some only in the WAL
    child.join()
    last = _acked(ack)
    assert last >= 3000, "child did not log enough before the kill"

    wal_dirs = [p for p in (root / "_wal").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert wal_dirs, "the killed writer left its write-ahead log"
    before = len(_committed_steps(root))
    replayed = Lake.open(parse_root(tracking_uri)).recover()
    # exactly the rows the killed writer had not committed: the WAL held only its metrics
    assert replayed == len(_committed_steps(root)) - before
    again = Lake.open(parse_root(tracking_uri)).recover()
    assert again == 0  # a second recovery applies nothing

    steps = _committed_steps(root)
    values = steps.to_pylist()
    assert len(values) == len(set(values)), "a value was applied twice"
    assert set(range(last + 1)) <= set(values), "an acknowledged value was lost"
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == len(values)


def _committed_steps(root: Path):
    metrics = DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table()
    return metrics.filter(pc.equal(metrics.column("key"), "loss")).column("step")
