"""Shared plumbing for ``bench/bench_*.py``: timing, isolated subprocesses, JSON figure lines.

Every benchmark prints one JSON line per figure, ours next to the reference measured in
the same run, with the ratio expressed as a speed-up (> 1 means ours is better), so
``run_all.py`` and anyone reading the output never has to remember which way a figure
points. Benchmarks never assert on time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

Better = Literal["lower", "higher"]

RATIO_MEANING = "speed-up of ours over the reference (>1: ours better)"


# -- environment ---------------------------------------------------------------------------

def reference_env() -> None:
    """Environment MLflow's own stores need in a benchmark process (and its children).

    The file store refuses to start without the opt-out; MLflow's usage telemetry is off so
    no benchmark waits on a network it cannot reach (it costs every store the same).
    """
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def parse_args(description: str, argv: Sequence[str] | None = None,
               groups: Sequence[str] = ()) -> argparse.Namespace:
    """The options every benchmark takes: ``--quick``, ``--only`` and ``--workdir``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes (finishes in < 60 s)")
    if groups:
        parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(groups)}")
    parser.add_argument("--workdir", default=None,
                        help="directory for the stores (default: a fresh temporary directory, removed after)")
    args = parser.parse_args(argv)
    if groups:
        chosen = [g.strip() for g in args.only.split(",") if g.strip()]
        unknown = sorted(set(chosen) - set(groups))
        if unknown:
            parser.error(f"--only names unknown groups {unknown}; choose from {list(groups)}")
        args.only = chosen or list(groups)
    return args


@contextlib.contextmanager
def workdir(path: str | None, prefix: str = "sparkml-ops-bench-") -> Iterator[Path]:
    """A scratch directory: the one given (kept) or a temporary one (removed afterwards)."""
    if path:
        target = Path(path).resolve()
        target.mkdir(parents=True, exist_ok=True)
        yield target
        return
    target = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


# -- timing --------------------------------------------------------------------------------

def time_calls(fn: Callable[[int], Any], n: int, warmup: int = 0) -> list[int]:
    """Nanoseconds of each of ``n`` calls ``fn(i)``, after ``warmup`` untimed calls ``fn(n + j)``."""
    for j in range(warmup):
        fn(n + j)
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        start = clock()
        fn(i)
        samples[i] = clock() - start
    return samples


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), nearest-rank: a value that was actually observed."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(min seconds, median seconds, last result) of ``repeats`` runs of ``fn``."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), median(times), result


@contextlib.contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as t: ...`` then ``t["s"]`` holds the elapsed seconds."""
    box = {"s": 0.0}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux, ``VmHWM`` of the current address space: ``ru_maxrss`` survives ``exec`` and so
    reports the parent's size in a freshly spawned child.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)


# -- isolation -----------------------------------------------------------------------------

def spawn_context() -> multiprocessing.context.SpawnContext:
    """Children start fresh: delta-rs runtimes do not survive ``fork``."""
    return multiprocessing.get_context("spawn")


def run_isolated(fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """``fn(*args)`` in a fresh spawned process; its return value (picklable) comes back.

    For figures that must not share a heap with earlier work (peak memory, cold caches).
    """
    ctx = spawn_context()
    with ctx.Pool(1) as pool:
        return pool.apply_async(fn, args).get(timeout)


# -- output --------------------------------------------------------------------------------

def ratio(ours: float | None, reference: float | None, better: Better) -> float | None:
    """Speed-up of ours over the reference: ref/ours for lower-is-better, ours/ref otherwise."""
    if ours is None or reference is None:
        return None
    if better == "lower":
        return round(reference / ours, 3) if ours > 0 else None
    return round(ours / reference, 3) if reference > 0 else None


def target_met(ours: float | None, target: float | None, better: Better) -> bool | None:
    if ours is None or target is None:
        return None
    return ours <= target if better == "lower" else ours >= target


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` significant digits, recursively, so lines stay readable."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def emit(
    figure: str,
    *,
    ours: float | None,
    reference: dict[str, float | None],
    unit: str,
    better: Better,
    target: float | None = None,
    n: Any = None,
    ratio_basis: dict[str, float | None] | None = None,
    stream: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """Print (and return) one figure as a JSON line.

    ``ratio_basis`` gives, per reference, the figure of ours to divide by when the
    reference was measured at a different size than ``ours`` (ratios compare equal sizes).
    """
    basis = ratio_basis or {}
    line: dict[str, Any] = {
        "figure": figure,
        "ours": ours,
        "reference": reference,
        "ratio": {name: ratio(basis.get(name, ours), value, better) for name, value in reference.items()},
        "unit": unit,
        "better": better,
        "target": target,
        "target_met": target_met(ours, target, better),
        "n": n,
    }
    line.update(extra)
    line["load_avg_1m"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other work on the host
    line = rounded(line)
    print(json.dumps(line, default=str), file=stream or sys.stdout, flush=True)
    return line
