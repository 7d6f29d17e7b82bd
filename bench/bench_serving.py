"""REST scoring benchmark (issue 5, item 7): ``sparkml-ops models serve`` next to ``mlflow models serve``.

    python bench/bench_serving.py [--quick] [--workdir DIR] [--seconds S] [--load-generator auto|wrk|threads]

One LogisticRegression on 20 double features is logged through our ``delta:`` store; our
server serves it as ``models:/<model_id>``, MLflow's (``mlflow models serve --env-manager
local``, one uvicorn worker each) serves the same model directory. Both get the same 1-row
``dataframe_split`` request, one server at a time, at concurrency 1 and 16, on kept-alive
connections and on a fresh connection per request. The load generator is ``wrk`` (Debian
package ``wrk``) when installed, else a bounded Python thread client; it only talks to
127.0.0.1. Prints one JSON line per figure (ours, MLflow's, ratio = speed-up of ours).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, percentile, reference_env, workdir  # noqa: E402

FEATURES = [f"f{i}" for i in range(20)]
SCENARIOS = (("c1", 1, False), ("c16", 16, False), ("c1_fresh", 1, True), ("c16_fresh", 16, True))
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_model(root: Path) -> tuple[str, str, str]:
    """Log the LR model through our store; returns (models:/ uri, local model dir, tracking uri)."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    tracking_uri = f"delta:{root / 'lake'}"
    mlflow.set_tracking_uri(tracking_uri)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, len(FEATURES))), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame.sum(axis=1) > 0).astype(int))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=frame.head(2),
                                        pip_requirements=mlflow.sklearn.get_default_pip_requirements())
    mlflow.tracking.MlflowClient()._tracking_client.store.flush()
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(root / "model"))
    return info.model_uri, local, tracking_uri


def start(cmd: list[str], port: int, log: Path, env: dict[str, str], timeout: float = 180) -> subprocess.Popen:
    with log.open("wb") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"{cmd[:3]} did not answer /ping within {timeout}s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def run_wrk(port: int, body: bytes, concurrency: int, fresh: bool, seconds: int, scratch: Path) -> dict:
    script = scratch / f"wrk-{concurrency}-{int(fresh)}.lua"
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if fresh:
        headers += 'wrk.headers["Connection"] = "close"\n'
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n{headers}{WRK_DONE}')
    out = subprocess.run(["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "10s",
                          "-s", str(script), f"http://127.0.0.1:{port}/invocations"],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON "):])
    return {"req_per_s": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1e3,
            "p90_ms": raw["p90_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3,
            "requests": raw["requests"], "errors": raw["errors"] + raw["non2xx"]}


def run_threads(port: int, body: bytes, concurrency: int, fresh: bool, seconds: float, scratch: Path) -> dict:
    """Fallback load generator: ``concurrency`` threads, each with its own connection, for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}
    if fresh:
        headers["Connection"] = "close"

    def client(i: int) -> None:
        conn = None
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body, headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
                conn.close()
                conn = None
                continue
            latencies[i].append(time.perf_counter() - started)
            if fresh:
                conn.close()
                conn = None

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    flat = [x * 1e3 for chunk in latencies for x in chunk]
    return {"req_per_s": len(flat) / elapsed, "p50_ms": percentile(flat, 50), "p90_ms": percentile(flat, 90),
            "p99_ms": percentile(flat, 99), "max_ms": max(flat), "requests": len(flat), "errors": sum(errors)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (``mlflow models serve`` runs uvicorn as a child)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def measure(name: str, cmd: list[str], port: int, env: dict[str, str], body: bytes, expected: bytes | None,
            seconds: int, scratch: Path, load) -> tuple[dict, bytes]:
    started = time.perf_counter()
    proc = start(cmd, port, scratch / f"{name}.log", env)
    startup_s = time.perf_counter() - started
    try:
        status, answer = post(port, body)
        if status != 200 or (expected is not None and json.loads(answer) != json.loads(expected)):
            raise RuntimeError(f"{name} answered {status} {answer[:300]!r}, expected {expected!r}")
        load(port, body, 16, False, 1, scratch)  # warm-up
        results = {"startup_s": startup_s}
        for label, concurrency, fresh in SCENARIOS:
            cpu_before = cpu_seconds(proc.pid)
            results[label] = load(port, body, concurrency, fresh, seconds, scratch)
            cpu = cpu_seconds(proc.pid) - cpu_before
            results[label]["cpu_us_per_req"] = cpu * 1e6 / max(1, results[label]["requests"])
            print(f"# {name} {label}: {json.dumps(results[label])}", file=sys.stderr, flush=True)
        return results, answer
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per scenario (finishes in < 60 s)")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per scenario (default 10; quick 2)")
    parser.add_argument("--workdir", default=None, help="scratch directory (default: temporary, removed)")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "threads"], default="auto",
                        help="wrk (Debian package) or Python threads; auto picks wrk when installed")
    args = parser.parse_args(argv)
    seconds = max(1, args.seconds or (2 if args.quick else 10))
    reference_env()
    os.environ.setdefault("SPARKML_OPS_FLUSH_INTERVAL_MS", "100")
    if args.load_generator == "wrk" and not shutil.which("wrk"):
        parser.error("--load-generator wrk: wrk is not installed (apt-get install wrk)")
    use_wrk = args.load_generator == "wrk" or (args.load_generator == "auto" and shutil.which("wrk"))
    load = run_wrk if use_wrk else run_threads
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))  # mlflow shells out to uvicorn
    with workdir(args.workdir, prefix="sparkml-ops-bench-serving-") as scratch:
        model_uri, local, tracking_uri = log_model(scratch)
        body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[0.05 * i - 0.4 for i in range(20)]]}})
        body = body.encode()
        port = _free_port()
        ours, answer = measure("ours", [sys.executable, "-m", "sparkml_ops.cli", "models", "serve", "-m", model_uri,
                                        "--root", tracking_uri, "--port", str(port), "--log-level", "warning"],
                               port, env, body, None, seconds, scratch, load)
        port = _free_port()
        mlflow_cmd = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", local, "--env-manager", "local",
                      "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
        ref, _ = measure("mlflow", mlflow_cmd, port, env, body, answer, seconds, scratch, load)

    common = {"n": {"seconds_per_scenario": seconds, "rows_per_request": 1, "features": len(FEATURES)},
              "cpus": os.cpu_count(),
              "load_generator": "wrk" if load is run_wrk else "python-threads", "server_workers": 1}
    targets = {("c16", "req_per_s"): 2000, ("c16", "p99_ms"): 30, ("c1", "p50_ms"): 1.5}
    for label, _, _ in SCENARIOS:
        for key, unit, better in (("req_per_s", "req/s", "higher"), ("p50_ms", "ms", "lower"),
                                  ("p99_ms", "ms", "lower"), ("cpu_us_per_req", "server CPU us/req", "lower")):
            emit(f"serve_{label}_{key}", ours=ours[label][key], reference={"mlflow_models_serve": ref[label][key]},
                 unit=unit, better=better, target=targets.get((label, key)),
                 errors={"ours": ours[label]["errors"], "mlflow_models_serve": ref[label]["errors"]}, **common)
    emit("serve_startup_s", ours=ours["startup_s"], reference={"mlflow_models_serve": ref["startup_s"]},
         unit="s", better="lower", **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
