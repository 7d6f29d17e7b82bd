"""Fixtures for project tests: a shared env cache, tiny projects, a git repository with history."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def env_cache(tmp_path_factory) -> Path:
    """One env cache for the session: the small project env is built once, then hit."""
    return tmp_path_factory.mktemp("project-envs")


def write_project(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return directory


SPARK_PROJECT = {
    "MLproject": """
        name: tiny
        python_env: python_env.yaml
        entry_points:
          main:
            parameters:
              alpha: {type: float, default: 0.5}
              n: {type: int, default: 10}
            command: "python train.py --alpha {alpha} --n {n}"
          fail:
            command: "python fail.py"
          sleep:
            command: "python sleep.py"
          shell:
            parameters:
              alpha: float
            command: "bash note.sh {alpha}"
    """,
    "note.sh": """
        python -c "import sys, mlflow; mlflow.log_metric('alpha', float(sys.argv[1])); print(sys.executable)" "$1"
    """,
    "python_env.yaml": """
        python: "3.11"
        dependencies:
          - cloudpickle
    """,
    "train.py": """
        import argparse
        import sys

        import mlflow
        from pyspark.sql import SparkSession

        parser = argparse.ArgumentParser()
        parser.add_argument("--alpha", type=float)
        parser.add_argument("--n", type=int)
        args = parser.parse_args()
        spark = SparkSession.builder.getOrCreate()
        pythons = spark.sparkContext.parallelize(range(2), 2).map(lambda _: __import__("sys").executable)
        total = spark.range(args.n).selectExpr("sum(id) AS s").first().s
        mlflow.log_metric("total", total * args.alpha)
        mlflow.set_tag("driver_python", sys.executable)
        mlflow.set_tag("executor_python", ",".join(sorted(set(pythons.collect()))))
        spark.stop()
    """,
    "fail.py": """
        import mlflow

        mlflow.log_metric("before_failure", 1.0)
        raise RuntimeError("project failed on purpose: xyzzy")
    """,
    "sleep.py": """
        import time

        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(600)).collect()
    """,
}


@pytest.fixture
def spark_project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "tiny", SPARK_PROJECT)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[str, list[str]]:
    """A bare repo (file:// URL) with two commits of a project in ``proj/``: ``value`` 1.0, then 2.0."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    git("config", "user.email", "t@example.com", cwd=work)
    git("config", "user.name", "t", cwd=work)
    commits = []
    for value in (1.0, 2.0):
        write_project(work / "proj", {
            "MLproject": """
                name: versioned
                entry_points:
                  main:
                    parameters:
                      scale: {type: float, default: 1}
                    command: "bash run.sh {scale}"
            """,
            "run.sh": "python log.py \"$1\"\n",
            "log.py": f"""
                import sys

                import mlflow

                mlflow.log_metric("value", {value} * float(sys.argv[1]))
            """,
        })
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"value {value}", cwd=work)
        commits.append(git("rev-parse", "HEAD", cwd=work))
    git("tag", "v1", commits[0], cwd=work)
    bare = tmp_path / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return f"file://{bare}", commits
