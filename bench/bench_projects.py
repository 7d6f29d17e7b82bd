"""Projects benchmark: env build cold vs cached; ``sparkml-ops run`` overhead vs plain spark-submit.

Prints one JSON line. Reference figures come from the same run: a plain ``spark-submit`` of the
same trivial script with this interpreter. Never asserts on time.

    python bench/bench_projects.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
assert spark.range(1000).count() == 1000
spark.stop()
"""
CONF = {"spark.ui.enabled": "false"}


def plain_spark_submit(script: Path, master: str) -> float:
    from sparkml_ops.projects.command import spark_submit_path

    cmd = [str(spark_submit_path()), "--master", master, "--conf", "spark.ui.enabled=false",
           "--conf", f"spark.pyspark.python={sys.executable}",
           "--conf", f"spark.pyspark.driver.python={sys.executable}", str(script)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"))
    return time.perf_counter() - start


def project_run(project: Path, master: str, env_manager: str, cache: Path) -> float:
    from sparkml_ops.projects import EnvOptions, SparkOptions, run

    start = time.perf_counter()
    submitted = run(str(project), "main", spark=SparkOptions(master=master, conf=CONF),
                    env=EnvOptions(manager=env_manager, cache_dir=cache, progress=False), stream_output=False)
    elapsed = time.perf_counter() - start
    if submitted.get_status() != "FINISHED":
        raise SystemExit(f"project run {submitted.run_id} ended {submitted.get_status()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one repetition, tiny env (< 60 s on an idle machine)")
    args = parser.parse_args()
    reps = 1 if args.quick else 3
    requirements = ["cloudpickle"] if args.quick else ["cloudpickle", "pyyaml", "six", "packaging"]
    master = "local[1]"

    import mlflow

    from sparkml_ops.envs import build_packed_env

    with tempfile.TemporaryDirectory(prefix="bench-projects-") as tmp:
        tmp_path = Path(tmp)
        mlflow.set_tracking_uri(f"delta:{tmp_path / 'lake'}")
        cache = tmp_path / "envs"
        cold = build_packed_env(requirements, cache_dir=cache, progress=False)
        cached = [build_packed_env(requirements, cache_dir=cache, progress=False).build_seconds for _ in range(5)]

        project = tmp_path / "trivial"
        project.mkdir()
        (project / "job.py").write_text(SCRIPT)
        (project / "python_env.yaml").write_text("dependencies:\n" + "".join(f"  - {r}\n" for r in requirements))
        (project / "MLproject").write_text("name: trivial\npython_env: python_env.yaml\n"
                                           "entry_points:\n  main:\n    command: python job.py\n")
        plain, local, packed = [], [], []
        for _ in range(reps):  # interleaved so machine load hits all three alike
            plain.append(plain_spark_submit(project / "job.py", master))
            local.append(project_run(project, master, "local", cache))
            packed.append(project_run(project, master, "virtualenv", cache))
        plain_s, local_s, packed_s = (statistics.median(x) for x in (plain, local, packed))
        print(json.dumps({
            "bench": "projects", "quick": args.quick, "requirements": requirements, "repetitions": reps,
            "env_build_cold_s": round(cold.build_seconds, 3),
            "env_build_cached_s": round(statistics.median(cached), 5),
            "env_cached_over_cold": round(statistics.median(cached) / cold.build_seconds, 5),
            "plain_spark_submit_s": round(plain_s, 3),
            "run_env_local_s": round(local_s, 3),
            "run_packed_env_cached_s": round(packed_s, 3),
            "run_local_over_plain": round(local_s / plain_s, 3),
            "run_packed_over_plain": round(packed_s / plain_s, 3),
            "packed_cached_added_s": round(packed_s - plain_s, 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }))


if __name__ == "__main__":
    main()
