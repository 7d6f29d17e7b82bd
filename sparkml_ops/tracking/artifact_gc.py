"""Tracking-aware artifact GC: deleted runs and models give up their artifacts, then chunks go.

The lake's :func:`~sparkml_ops.lake.blobs.gc` knows only manifests. This step decides which
manifest entries die: those under the ``delta-artifacts:`` location of every deleted run,
deleted logged model, and logged model of a deleted experiment, in this root. After it, a
restored run keeps its metadata but not its artifacts (as with ``mlflow gc``).
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow.compute as pc
from mlflow.entities import LifecycleStage

from sparkml_ops.errors import BadInput
from sparkml_ops.lake.blobs import DEFAULT_WAIT_S, BlobStore
from sparkml_ops.lake.blobs import gc as blob_gc
from sparkml_ops.tracking.artifact_uri import NAMESPACE, is_artifact_uri, parse_artifact_uri


def purge_deleted(store: Any, *, older_than_s: float = 0.0) -> dict[str, int]:
    """Tombstone the artifacts of deleted runs/models of ``store`` (a DeltaTrackingStore), in one commit."""
    if older_than_s < 0:
        raise BadInput(f"older_than_s {older_than_s} must be >= 0")
    store.flush()
    cutoff_ms = int((time.time() - older_than_s) * 1000)
    runs = store.state.runs()
    deleted_runs = runs.filter(pc.and_(
        pc.equal(runs.column("lifecycle_stage"), LifecycleStage.DELETED),
        pc.less_equal(pc.fill_null(runs.column("deleted_time"), 0), cutoff_ms)))
    locations = deleted_runs.column("artifact_uri").to_pylist()
    experiments = store.state.experiments()
    dead_experiments = experiments.filter(pc.equal(experiments.column("lifecycle_stage"), LifecycleStage.DELETED))
    models = store.state.logged_models()
    dead_models = models.filter(pc.or_(
        pc.and_(pc.equal(models.column("lifecycle_stage"), LifecycleStage.DELETED),
                pc.less_equal(models.column("last_updated_timestamp"), cutoff_ms)),
        pc.is_in(models.column("experiment_id"), value_set=dead_experiments.column("experiment_id"))))
    locations += dead_models.column("artifact_location").to_pylist()
    prefixes = []
    for uri in locations:
        if uri and is_artifact_uri(uri):
            address = parse_artifact_uri(uri)
            if address.location == store.location and address.prefix:
                prefixes.append(address.prefix)
    blobs = BlobStore.open(store.location)
    removed = blobs.delete_many(NAMESPACE, prefixes) if prefixes else 0
    return {"deleted_runs": deleted_runs.num_rows, "deleted_models": dead_models.num_rows,
            "artifact_entries_removed": removed}


def collect_garbage(store: Any, *, older_than_s: float = 0.0, min_age_s: float = 0.0,
                    wait_s: float = DEFAULT_WAIT_S, purge: bool = True) -> dict[str, Any]:
    """Purge deleted runs' artifacts (unless ``purge`` is False), then reclaim unreferenced chunks."""
    out: dict[str, Any] = {"root": store.location.uri}
    if purge:
        out.update(purge_deleted(store, older_than_s=older_than_s))
    out.update(blob_gc(store.location, min_age_s=min_age_s, wait_s=wait_s).as_dict())
    return out
