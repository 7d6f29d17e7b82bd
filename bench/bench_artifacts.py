"""Artifact benchmarks (issue 3): Delta-backed artifacts next to MLflow's local repository and a plain copy.

    python bench/bench_artifacts.py [--quick] [--only large,small,dedup,memory] [--workdir DIR]

Figures (each one JSON line, references measured in the same run):

- ``large``: one big file (1 GiB; quick: 64 MiB) uploaded and downloaded, MB/s, against
  MLflow's ``LocalArtifactRepository`` and ``shutil.copyfile`` (the physical limit).
- ``small``: a directory of 10,000 files of 10 KiB (quick: 1,000), same references;
  ``log_artifacts`` is one Delta commit for the whole directory.
- ``dedup``: the same 100 MiB model (quick: 10 MiB) logged by 20 runs: bytes on disk.
- ``memory``: peak RSS growth of a process uploading then downloading a 2 GiB file
  (quick: 128 MiB), each in a fresh process; the bound is the few chunks in flight.

The page cache is flushed to disk (``os.sync``) before every timed operation; each throughput
is reported twice: until the data is durable (``os.sync`` returned; the physical limit is the
disk) and until the call returned (page cache; plain copies then run at memory speed in the
kernel while we hash every byte twice). Best of two runs (one in quick mode), interleaved.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, parse_args, reference_env, run_isolated, workdir  # noqa: E402

GROUPS = ("large", "small", "dedup", "memory")
MiB = 1024 * 1024
SIZES = {
    "quick": {"large": 64 * MiB, "small_files": 1_000, "small_size": 10 * 1024, "dedup": 8 * MiB,
              "dedup_runs": 20, "memory": 96 * MiB, "repeats": 1},
    "full": {"large": 1024 * MiB, "small_files": 10_000, "small_size": 10 * 1024, "dedup": 100 * MiB,
             "dedup_runs": 20, "memory": 2048 * MiB, "repeats": 2},
}


# -- set-up ------------------------------------------------------------------------------------

def random_file(path: Path, size: int, seed: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        left = size
        while left:
            block = min(left, 64 * MiB)
            handle.write(rng.integers(0, 256, block, dtype=np.uint8).tobytes())
            left -= block
    return path


def small_tree(path: Path, count: int, size: int) -> Path:
    for i in range(count):
        random_file(path / f"d{i % 100:02d}" / f"f{i:05d}.bin", size, seed=i)
    return path


def new_root(base: Path, name: str) -> Path:
    """A fresh tracking root (Lake.open writes its marker and tables)."""
    from sparkml_ops.lake import Lake, parse_root

    root = base / name
    Lake.open(parse_root(str(root))).close()
    return root


def ours_repo(root: Path, run: str):
    from sparkml_ops.tracking.artifact_repo import DeltaArtifactRepository

    return DeltaArtifactRepository(f"delta-artifacts:{root}/artifacts/0/{run}/artifacts")


def mlflow_repo(directory: Path):
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    return LocalArtifactRepository(str(directory))


def disk_bytes(path: Path) -> int:
    """Allocated bytes under ``path`` (what ``du`` reports)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def timed(fn, *args) -> tuple[float, float]:
    """Seconds of ``fn(*args)``: returned (into the page cache) and durable (after ``os.sync``).

    Dirty pages are flushed first, so every run starts alike.
    """
    os.sync()
    start = time.perf_counter()
    fn(*args)
    cached = time.perf_counter() - start
    os.sync()
    return cached, time.perf_counter() - start


def emit_throughput(figure: str, mb: float, table: dict[str, list[tuple[float, float]]], n: str,
                    target_of: dict[str, float] | None = None, **extra) -> None:
    """Two lines per figure: data durable on disk (the physical limit) and merely returned."""
    for suffix, which in (("", 1), ("_cached", 0)):
        rates = {k: mb / min(t[which] for t in v) for k, v in table.items()}
        reference = {k: v for k, v in rates.items() if k != "ours"}
        target = None
        rule = None
        if target_of:
            (ref_name, factor), = target_of.items()
            target, rule = factor * rates[ref_name], f"ours >= {factor:g} x {ref_name}"
        emit(figure + suffix, ours=rates["ours"], reference=reference, unit="MB/s", better="higher", target=target,
             n=n, timing="until os.sync() returned" if which else "until the call returned (page cache)",
             target_rule=rule, **extra)


# -- figures -----------------------------------------------------------------------------------

def bench_large(base: Path, size: int, repeats: int) -> None:
    src = random_file(base / "src" / "large.bin", size, seed=1)
    mb = size / MiB
    up: dict[str, list[tuple[float, float]]] = {"plain_copy": [], "mlflow_local": [], "ours": []}
    down: dict[str, list[tuple[float, float]]] = {"plain_copy": [], "mlflow_local": [], "ours": []}
    for rep in range(repeats):
        work = base / f"large{rep}"
        copy_dst = work / "copy" / "large.bin"
        copy_dst.parent.mkdir(parents=True)
        up["plain_copy"].append(timed(shutil.copyfile, src, copy_dst))
        back = work / "copy-back.bin"
        down["plain_copy"].append(timed(shutil.copyfile, copy_dst, back))
        ml = mlflow_repo(work / "mlflow")
        up["mlflow_local"].append(timed(ml.log_artifact, str(src), "big"))
        (work / "ml-dl").mkdir()
        down["mlflow_local"].append(timed(ml.download_artifacts, "big/large.bin", str(work / "ml-dl")))
        repo = ours_repo(new_root(work, "lake"), "r")
        up["ours"].append(timed(repo.log_artifact, str(src), "big"))
        (work / "ours-dl").mkdir()
        down["ours"].append(timed(repo.download_artifacts, "big/large.bin", str(work / "ours-dl")))
        assert os.path.getsize(work / "ours-dl" / "big" / "large.bin") == size
        shutil.rmtree(work)
    for label, table in (("upload", up), ("download", down)):
        emit_throughput(f"artifacts_large_{label}_MBps", mb, table, f"1 file of {mb:.0f} MiB",
                        target_of={"plain_copy": 0.5})


def bench_small(base: Path, count: int, size: int, repeats: int) -> None:
    src = small_tree(base / "src" / "small", count, size)
    mb = count * size / MiB
    up: dict[str, list[tuple[float, float]]] = {"plain_copy": [], "mlflow_local": [], "ours": []}
    down: dict[str, list[tuple[float, float]]] = {"plain_copy": [], "mlflow_local": [], "ours": []}
    for rep in range(repeats):
        work = base / f"small{rep}"
        work.mkdir()
        up["plain_copy"].append(timed(shutil.copytree, src, work / "copy"))
        down["plain_copy"].append(timed(shutil.copytree, work / "copy", work / "copy-back"))
        ml = mlflow_repo(work / "mlflow")
        up["mlflow_local"].append(timed(ml.log_artifacts, str(src), "small"))
        (work / "ml-dl").mkdir()
        down["mlflow_local"].append(timed(ml.download_artifacts, "small", str(work / "ml-dl")))
        repo = ours_repo(new_root(work, "lake"), "r")
        up["ours"].append(timed(repo.log_artifacts, str(src), "small"))
        (work / "ours-dl").mkdir()
        down["ours"].append(timed(repo.download_artifacts, "small", str(work / "ours-dl")))
        assert sum(1 for _ in (work / "ours-dl" / "small").rglob("*.bin")) == count
        shutil.rmtree(work)
    for label, table in (("upload", up), ("download", down)):
        emit_throughput(f"artifacts_small_{label}_MBps", mb, table, f"{count} files of {size // 1024} KiB",
                        target_of={"mlflow_local": 3.0} if label == "upload" else None,
                        files_per_s={k: count / min(t[1] for t in v) for k, v in table.items()})


def bench_dedup(base: Path, size: int, runs: int) -> None:
    model = base / "src" / "model"
    random_file(model / "model.bin", size, seed=7)
    (model / "MLmodel").write_text("flavors: {}\n")
    root = new_root(base, "dedup-lake")
    before = disk_bytes(root)
    start = time.perf_counter()
    for i in range(runs):
        ours_repo(root, f"run{i}").log_artifacts(str(model), "model")
    ours_s = time.perf_counter() - start
    ours_mb = (disk_bytes(root) - before) / MiB
    ml_dir = base / "dedup-mlflow"
    start = time.perf_counter()
    for i in range(runs):
        mlflow_repo(ml_dir / f"run{i}").log_artifacts(str(model), "model")
    ml_s = time.perf_counter() - start
    logical_mb = runs * size / MiB
    emit("artifacts_dedup_storage_MB", ours=ours_mb,
         reference={"mlflow_local": disk_bytes(ml_dir) / MiB, "logical": logical_mb},
         unit="MiB on disk", better="lower", target=1.1 * size / MiB,
         n=f"{runs} runs x {size / MiB:.0f} MiB model", log_seconds={"ours": ours_s, "mlflow_local": ml_s},
         target_rule="<= 110% of one copy")


def _rss_worker(kind: str, root: str, src: str, dst: str) -> dict[str, float]:
    """Runs in a fresh process: RSS growth (MiB) over one upload or download."""
    import psutil

    repo = ours_repo(Path(root), "mem") if kind.startswith("ours") else mlflow_repo(Path(root) / "mlflow")
    process = psutil.Process()
    peak = [process.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    repo.list_artifacts()  # warm the tables' readers before the baseline
    baseline = process.memory_info().rss
    peak[0] = baseline
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    if kind.endswith("upload"):
        repo.log_artifact(src, "mem")
    else:
        repo.download_artifacts("mem/big.bin", dst)
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    return {"growth_mb": (peak[0] - baseline) / MiB, "baseline_mb": baseline / MiB, "seconds": seconds}


def _rss_reference(base: str, src: str, dst: str) -> tuple[dict[str, float], dict[str, float]]:
    """MLflow's local repository, upload then download in one fresh process (it copies files)."""
    return _rss_worker("mlflow_upload", base, src, ""), _rss_worker("mlflow_download", base, "", dst)


def bench_memory(base: Path, size: int) -> None:
    src = random_file(base / "src" / "big.bin", size, seed=9)
    root = new_root(base, "mem-lake")
    (base / "mem-dl").mkdir()
    (base / "ml-dl").mkdir()
    results = {
        "ours_upload": run_isolated(_rss_worker, "ours_upload", str(root), str(src), ""),
        "ours_download": run_isolated(_rss_worker, "ours_download", str(root), "", str(base / "mem-dl")),
    }
    reference = run_isolated(_rss_reference, str(base), str(src), str(base / "ml-dl"))
    results.update(mlflow_upload=reference[0], mlflow_download=reference[1])
    assert os.path.getsize(base / "mem-dl" / "mem" / "big.bin") == size
    for label in ("upload", "download"):
        ours, ref = results[f"ours_{label}"], results[f"mlflow_{label}"]
        emit(f"artifacts_{label}_rss_growth_MB", ours=ours["growth_mb"], reference={"mlflow_local": ref["growth_mb"]},
             unit="MiB", better="lower", target=300.0, n=f"1 file of {size / MiB:.0f} MiB",
             seconds={"ours": ours["seconds"], "mlflow_local": ref["seconds"]},
             MBps={"ours": size / MiB / ours["seconds"], "mlflow_local": size / MiB / ref["seconds"]},
             target_rule="peak RSS growth <= 300 MiB whatever the file size")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, GROUPS)
    reference_env()
    sizes = SIZES["quick" if args.quick else "full"]
    with workdir(args.workdir, prefix="sparkml-ops-bench-artifacts-") as base:
        if "large" in args.only:
            bench_large(base, sizes["large"], sizes["repeats"])
        if "small" in args.only:
            bench_small(base, sizes["small_files"], sizes["small_size"], sizes["repeats"])
        if "dedup" in args.only:
            bench_dedup(base, sizes["dedup"], sizes["dedup_runs"])
        if "memory" in args.only:
            bench_memory(base, sizes["memory"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
