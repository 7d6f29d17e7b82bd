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

TESTS = Path(__file__).parent
TIERS = ("spark", "slow", "browser")

# Tiers come from where a test lives (`make test-fast` deselects spark, slow and browser).
# A test that asks for the session `spark` fixture is `spark` without being listed. Listed here:
# a directory whose tests all share a tier, or a file where its directory mixes tiers. `spark`
# = starts a JVM some other way (spark-submit, a Spark Connect server, a kernel's session);
# `slow` = real server/kernel/worker processes or long concurrent runs (seconds to minutes each).
# Single slow tests inside a fast file carry `@pytest.mark.slow` themselves.
PATH_TIERS: dict[str, tuple[str, ...]] = {
    "server": ("slow",),
    "server/test_browser.py": ("browser",),
    "models/serving/test_general_path.py": ("slow",),
    "models/serving/test_lifecycle.py": ("slow",),
    "models/serving/test_protocol.py": ("slow",),
    "models/test_connect.py": ("spark", "slow"),
    "models/test_jobs.py": ("spark",),
    "sql/test_compare_job.py": ("spark",),
    "projects/test_rebuild_cli.py": ("spark", "slow"),
    "projects/test_runs.py": ("spark", "slow"),
    "projects/test_standalone.py": ("spark", "slow"),
    "projects/test_workflow_example.py": ("spark", "slow"),
    "tuning/test_tune.py": ("slow",),
    "tuning/test_tune_project.py": ("spark", "slow"),
    "registry/test_concurrency.py": ("slow",),
    "registry/test_serve_follow.py": ("slow",),
    "registry/test_stream_follow.py": ("spark", "slow"),
    "notebook/test_kernel_notebooks.py": ("slow",),
    "artifacts/test_models.py": ("slow",),
    "lake/test_crash.py": ("slow",),
}


def path_tiers(path: Path) -> set[str]:
    """The tiers ``PATH_TIERS`` gives a test file: its own entry and every enclosing directory's."""
    relative = path.relative_to(TESTS)
    keys = {relative.as_posix()} | {parent.as_posix() for parent in relative.parents}
    return {tier for key in keys for tier in PATH_TIERS.get(key, ())}


def pytest_collection_modifyitems(config, items):
    """Add each test's tiers; a tier marker set by hand on a whole module is a collection error."""
    for item in items:
        module = getattr(item, "module", None)
        hand_set = getattr(module, "pytestmark", [])
        hand_set = hand_set if isinstance(hand_set, list) else [hand_set]
        if any(mark.name in TIERS for mark in hand_set):
            raise pytest.UsageError(f"{item.path}: module-level {TIERS} markers come from PATH_TIERS in "
                                    "tests/conftest.py; remove the pytestmark entry")
        tiers = path_tiers(Path(item.path))
        if "spark" in getattr(item, "fixturenames", ()):
            tiers.add("spark")
        for tier in sorted(tiers - {mark.name for mark in item.iter_markers()}):
            item.add_marker(tier)


def _jvm_running() -> bool:
    pyspark = sys.modules.get("pyspark")
    return pyspark is not None and pyspark.SparkContext._gateway is not None


@pytest.fixture(autouse=True)
def _spark_tier_is_true(request):
    """A test outside the ``spark`` tier that starts a JVM in this process fails: the tier map is wrong."""
    before = _jvm_running()
    yield
    if not before and _jvm_running() and request.node.get_closest_marker("spark") is None:
        pytest.fail(f"{request.node.nodeid} started a JVM but is not in the spark tier; "
                    "list its file in PATH_TIERS (tests/conftest.py)")


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
        lake = Lake.opened(parse_root(uri))
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
