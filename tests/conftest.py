"""Shared fixtures: a fresh tracking root per test and one tuned local Spark session."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Spark's Python workers must run this interpreter, and delta-rs must never be forked.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARKML_OPS_FLUSH_INTERVAL_MS", "100")


@pytest.fixture(autouse=True)
def _fresh_fluent_experiment(monkeypatch):
    """``mlflow.set_experiment`` is process-global: start each test on the default experiment."""
    import mlflow.tracking.fluent as fluent

    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        # set_experiment exports MLFLOW_EXPERIMENT_ID: setenv first records "unset" so it is removed after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty directory to use as a tracking root (not created yet)."""
    return tmp_path / "lake"


@contextlib.contextmanager
def tracking_to(root: Path | str) -> Iterator[str]:
    """Point ``mlflow`` at a ``delta:`` root (a path, or a ``delta:`` URI such as ``delta://s3://b/x``);
    afterwards end open runs, restore the default, close the lake."""
    import mlflow

    from sparkml_ops.lake import Lake, parse_root

    uri = root if isinstance(root, str) and root.startswith("delta:") else f"delta:{root}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(previous or "")
        lake = Lake._open.get(parse_root(uri))
        if lake is not None:
            lake.close()


@pytest.fixture
def tracking_uri(root: Path):
    """Points ``mlflow`` at a fresh ``delta:`` root for one test, then restores the default."""
    with tracking_to(root) as uri:
        yield uri


@pytest.fixture
def store(tracking_uri: str):
    from sparkml_ops.tracking.store import DeltaTrackingStore

    return DeltaTrackingStore(tracking_uri)


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for the whole run: UI off, 2 shuffle partitions."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("sparkml_ops-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.driver.memory", "2g")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
