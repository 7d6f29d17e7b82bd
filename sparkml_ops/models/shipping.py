"""Ship a model directory to the executors once per session, as a Spark archive.

``SparkSession.addArtifacts(..., archive=True)`` works on classic sessions (it becomes
``SparkContext.addArchive``) and on Spark Connect sessions alike; executors unpack the zip
once and workers find it with ``SparkFiles.get(name)``. The archive name carries the model's
content hash, so a changed model is a new archive and an unchanged one is never re-sent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

from sparkml_ops.errors import StorageError
from sparkml_ops.models.resolve import ResolvedModel

_shipped: set[tuple[int, str]] = set()
_archives: dict[str, str] = {}
_lock = threading.Lock()


def archive_name(model: ResolvedModel) -> str:
    return f"sparkml_model_{model.digest}.zip"


def _zip(model: ResolvedModel) -> str:
    with _lock:
        cached = _archives.get(model.digest)
    if cached and os.path.isfile(cached):
        return cached
    folder = tempfile.mkdtemp(prefix="sparkml-ops-ship-")
    base = os.path.join(folder, archive_name(model)[: -len(".zip")])
    try:
        path = shutil.make_archive(base, "zip", root_dir=model.path)
    except OSError as exc:
        raise StorageError(f"cannot pack model {model.label} from {model.path}: {exc}") from exc
    with _lock:
        _archives[model.digest] = path
    return path


def _session_key(spark) -> int:
    try:
        return id(spark.sparkContext)  # classic: one per JVM context
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext; the session is the unit
        return id(spark)


def ship(spark, model: ResolvedModel) -> str:
    """Make ``model`` available to ``spark``'s executors; returns the archive name for ``SparkFiles``."""
    name = archive_name(model)
    key = (_session_key(spark), model.digest)
    with _lock:
        if key in _shipped:
            return name
    path = _zip(model)
    try:
        spark.addArtifacts(path, archive=True)
    except Exception as exc:
        text = str(exc)
        if "already" not in text.lower() and "exists" not in text.lower():
            raise StorageError(f"cannot ship model {model.label} to the executors: {exc}") from exc
    with _lock:
        _shipped.add(key)
    return name
