"""Run every ``bench/bench_*.py`` in its own process and print their JSON figure lines.

    python bench/run_all.py [--quick] [--only tracking,spark_udf] [--timeout SECONDS]

Each line a benchmark prints on stdout that is a JSON object is passed through with a
``bench`` key naming its file; anything else, and the benchmark's stderr, goes to stderr
only when the benchmark fails. A summary (exit code and time of each benchmark) ends on
stderr; the exit code is non-zero when any benchmark failed (never because of a figure).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(only: list[str]) -> list[Path]:
    """``bench_*.py`` files next to this one, by name; ``only`` filters by the part after ``bench_``."""
    found = sorted(HERE.glob("bench_*.py"))
    if not only:
        return found
    by_name = {p.stem.removeprefix("bench_"): p for p in found}
    unknown = sorted(set(only) - set(by_name))
    if unknown:
        raise SystemExit(f"--only names unknown benchmarks {unknown}; available: {sorted(by_name)}")
    return [by_name[name] for name in only]


def run_one(script: Path, quick: bool, timeout: float | None) -> tuple[int, float]:
    """Run one benchmark, streaming its JSON lines; returns (exit code, seconds)."""
    name = script.stem.removeprefix("bench_")
    command = [sys.executable, str(script)] + (["--quick"] if quick else [])
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as errors:
        # its own process group, so a timeout also ends the worker processes it spawned
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=HERE.parent,
                                   start_new_session=True)
        other: list[str] = []
        watchdog = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL)) if timeout else None
        if watchdog is not None:
            watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                _forward(line, name, other)
            code = process.wait()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        if watchdog is not None and code == -signal.SIGKILL:
            print(f"# {name}: killed after {timeout:.0f} s", file=sys.stderr)
        if code != 0:
            errors.seek(0)
            print(f"# {name} failed (exit {code}); its output:", file=sys.stderr)
            for line in other:
                print(line, end="", file=sys.stderr)
            print(errors.read()[-20_000:], file=sys.stderr)
    return code, time.perf_counter() - started


def _forward(line: str, name: str, other: list[str]) -> None:
    try:
        figure = json.loads(line)
    except ValueError:
        other.append(line)
        return
    if not isinstance(figure, dict):
        other.append(line)
        return
    figure.setdefault("bench", name)
    print(json.dumps(figure), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (file name after 'bench_')")
    parser.add_argument("--timeout", type=float, default=None, help="seconds after which a benchmark is killed")
    args = parser.parse_args(argv)
    scripts = discover([n.strip() for n in args.only.split(",") if n.strip()])
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    summary = []
    for script in scripts:
        code, seconds = run_one(script, args.quick, args.timeout)
        summary.append((script.stem.removeprefix("bench_"), code, seconds))
    for name, code, seconds in summary:
        print(f"# {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds:.1f} s", file=sys.stderr)
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
