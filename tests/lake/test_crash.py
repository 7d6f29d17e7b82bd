"""SIGKILL a logging process: every acknowledged value survives exactly once, and every
process on the root — fresh or open for days — sees it."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
from deltalake import DeltaTable


def _logger(uri: str, run_file: str, ack_path: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    Path(run_file).write_text(run_id)
    with open(ack_path, "w") as ack:
        step = 0
        while True:
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            ack.write(f"{step}\n")  # written only after the call returned (acknowledged)
            ack.flush()
            step += 1


def _acked(path: Path) -> int:
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return int(lines[-1]) if lines else -1


def _log_then_kill(uri: str, tmp_path: Path, steps: int = 3000) -> tuple[str, int]:
    """A child creates a run and logs one step per call; killed after ``steps`` acknowledgements."""
    ack, run_file = tmp_path / "acked.txt", tmp_path / "run_id.txt"
    child = mp.get_context("spawn").Process(target=_logger, args=(uri, str(run_file), str(ack)))
    child.start()
    deadline = time.time() + 120
    while time.time() < deadline and _acked(ack) < steps:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # mid-stream: some rows committed, some only in the WAL
    child.join()
    last = _acked(ack)
    assert last >= steps, "child did not log enough before the kill"
    return run_file.read_text(), last


def _committed_steps(root: Path) -> list[int]:
    metrics = DeltaTable(str(root / "tables" / "metrics")).to_pyarrow_table()
    return metrics.filter(pc.equal(metrics.column("key"), "loss")).column("step").to_pylist()


def test_recover_replays_exactly_what_was_not_committed(root, tmp_path):
    """No process has the root open: ``sparkml-ops recover`` replays the dead log, reports the
    rows it really replayed, and a second run replays nothing."""
    run_id, last = _log_then_kill(f"delta:{root}", tmp_path)
    committed_before = len(_committed_steps(root))
    assert [p for p in (root / "_wal").iterdir() if p.is_dir()], "the killed writer left its write-ahead log"

    def recover() -> int:
        out = subprocess.run([sys.executable, "-m", "sparkml_ops.cli", "recover", "--root", str(root)],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])["replayed_rows"]

    replayed = recover()
    values = _committed_steps(root)
    assert replayed == len(values) - committed_before > 0
    assert recover() == 0  # a second recovery applies nothing
    assert len(values) == len(set(values)), "a value was applied twice"
    assert set(range(last + 1)) <= set(values), "an acknowledged value was lost"


def test_a_long_lived_reader_sees_a_killed_writers_values(tracking_uri, root, tmp_path):
    """The reader has the root open (and its snapshots warm) before the writer starts and
    never reopens it: the dead writer's acknowledged values appear within seconds."""
    from mlflow import MlflowClient

    reader = MlflowClient(tracking_uri)
    assert reader.search_experiments()  # the root is open in this process, snapshots loaded
    run_id, last = _log_then_kill(tracking_uri, tmp_path)
    killed = time.monotonic()
    seen: list[int] = []
    while time.monotonic() - killed < 30:
        seen = [m.step for m in reader.get_metric_history(run_id, "loss")]
        if len(seen) > last:
            break
        time.sleep(0.1)
    waited = time.monotonic() - killed
    assert set(range(last + 1)) <= set(seen), f"{last + 1 - len(seen)} acknowledged values missing after {waited:.1f} s"
    assert len(seen) == len(set(seen)), "a value is visible twice"
    values = _committed_steps(root)
    assert sorted(values) == sorted(seen), "the reader's view differs from the table"


def _watch(uri: str, run_file: str, out: str) -> None:
    """A second long-lived process: open the root, then, once told how many steps were
    acknowledged, read the run until it holds them all (or time runs out)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    client.search_experiments()
    Path(out + ".ready").write_text("")
    go = Path(out + ".go")
    deadline = time.time() + 180
    while time.time() < deadline and not go.exists():
        time.sleep(0.1)
    want = int(go.read_text())
    steps: list[int] = []
    while time.time() < deadline:
        steps = [m.step for m in client.get_metric_history(Path(run_file).read_text(), "loss")]
        if len(steps) >= want:
            break
        time.sleep(0.1)
    Path(out).write_text(json.dumps(steps))


def test_two_live_readers_recover_a_dead_writer_exactly_once(root, tmp_path):
    """Two processes have the root open when the writer dies; both notice it, one replays,
    each sees every value once, and the table holds each value once."""
    uri = f"delta:{root}"
    ctx = mp.get_context("spawn")
    run_file = tmp_path / "run_id.txt"
    outs = [str(tmp_path / f"reader{i}.json") for i in range(2)]
    # The readers open the root first (the writer's run does not exist yet): they wait for the run file.
    from sparkml_ops.lake import Lake, parse_root

    Lake.open(parse_root(uri)).close()  # create the root so the readers can open it
    readers = [ctx.Process(target=_watch, args=(uri, str(run_file), out)) for out in outs]
    for proc in readers:
        proc.start()
    deadline = time.time() + 120
    while time.time() < deadline and not all(Path(o + ".ready").exists() for o in outs):
        time.sleep(0.1)
    run_id, last = _log_then_kill(uri, tmp_path)
    for out in outs:
        Path(out + ".go").write_text(str(last + 1))
    for proc in readers:
        proc.join(90)
    views = [json.loads(Path(o).read_text()) for o in outs]
    for steps in views:
        assert len(steps) == len(set(steps)), "a reader sees a value twice"
        assert set(range(last + 1)) <= set(steps), "a reader misses an acknowledged value"
    values = _committed_steps(root)
    assert len(values) == len(set(values)), "the dead writer's log was replayed twice"
    assert sorted(values) == sorted(views[0]) == sorted(views[1])
    assert not [p for p in (root / "_wal").iterdir() if p.is_dir() and not p.name.startswith(".")]
