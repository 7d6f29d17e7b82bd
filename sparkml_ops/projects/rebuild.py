"""``rebuild(run_id)``: re-run a finished project run exactly, and say whether metrics match.

Same source commit (a local git working directory is re-run from its repository at the
recorded commit), same parameters, same environment spec (so the same env hash when the
interpreter is unchanged), and the same input data versions: Delta inputs the original run
logged are pinned through ``SPARKML_OPS_PIN_INPUTS`` (see :mod:`.pins`). The new run is
tagged ``sparkml_ops.rebuild_of=<original>``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkml_ops.errors import BadInput, InvalidState
from sparkml_ops.projects import tags as T
from sparkml_ops.projects.pins import pins_from_inputs, unversioned_delta_inputs


@dataclass
class RebuildResult:
    original_run_id: str
    run_id: str
    status: str
    env_hash_matches: bool
    metrics_match: bool
    differences: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    pinned_inputs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"original_run_id": self.original_run_id, "run_id": self.run_id, "status": self.status,
                "env_hash_matches": self.env_hash_matches, "metrics_match": self.metrics_match,
                "differences": {k: list(v) for k, v in self.differences.items()},
                "pinned_inputs": self.pinned_inputs}


def _source_of(tags: dict[str, str]) -> tuple[str, str | None]:
    """(uri, version) that reproduces the original source."""
    uri = tags.get(T.PROJECT_URI) or tags.get(T.SOURCE_NAME)
    if not uri:
        raise BadInput("the run has no project source tag; it was not started by sparkml_ops projects")
    commit = tags.get(T.GIT_COMMIT)
    repo = tags.get(T.GIT_REPO_URL)
    if not commit or not repo:
        print(f"sparkml_ops: warning: {uri} was not under version control; rebuilding from its current contents",
              file=sys.stderr)
        return uri, None
    if tags.get(T.SOURCE_DIRTY) == "true":
        print("sparkml_ops: warning: the original run had uncommitted changes; rebuilding the committed state",
              file=sys.stderr)
    if "://" not in repo and not repo.endswith(".git") and Path(repo).is_absolute():
        repo = f"file://{repo}"
    sub = tags.get(T.REPO_SUBDIRECTORY, "")
    return (f"{repo}#{sub}" if sub else repo), commit


def compare_metrics(old: dict[str, float], new: dict[str, float], rel_tol: float = 1e-9
                    ) -> dict[str, tuple[float | None, float | None]]:
    diffs = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is None or b is None or not (math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
                                          or (math.isnan(a) and math.isnan(b))):
            diffs[key] = (a, b)
    return diffs


def rebuild(run_id: str, *, tracking_uri: str | None = None, master: str | None = None,
            env_cache_dir: Path | None = None, progress: bool = True, stream_output: bool = True,
            spark_conf: dict[str, str] | None = None) -> RebuildResult:
    """Re-run ``run_id`` as a new run (see module docstring) and compare the final metrics.

    Args:
        run_id: a finished run started by :func:`sparkml_ops.projects.run`.
        tracking_uri: default ``mlflow.get_tracking_uri()``.
        master: default the original run's master; ``spark_conf``: extra Spark settings.
        env_cache_dir, progress, stream_output: as in :class:`EnvOptions` and ``run``.

    Raises:
        BadInput: the run was not a project run. InvalidState: it has not ended yet.

    Example: ``result = rebuild(run_id); assert result.metrics_match and result.env_hash_matches``.
    """
    import mlflow
    from mlflow import MlflowClient

    from sparkml_ops.projects.options import EnvOptions, SparkOptions, TrackingOptions, env_manager_name
    from sparkml_ops.projects.runner import run

    tracking_uri = tracking_uri or mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri)
    original = client.get_run(run_id)
    tags = original.data.tags
    if tags.get(T.BACKEND) != T.BACKEND_NAME:
        raise BadInput(f"run {run_id} was not started by the spark-submit project backend "
                       f"(tag {T.BACKEND}={tags.get(T.BACKEND)!r}); only project runs can be rebuilt")
    if original.info.status not in ("FINISHED", "FAILED", "KILLED"):
        raise InvalidState(f"run {run_id} is {original.info.status}; wait for it to end before rebuilding it")
    uri, version = _source_of(tags)
    inputs = original.inputs.dataset_inputs if original.inputs else []
    pins = pins_from_inputs(inputs)
    for name in unversioned_delta_inputs(inputs):
        print(f"sparkml_ops: warning: input {name} has no recorded Delta version; the rebuild reads its latest",
              file=sys.stderr)
    manager = env_manager_name(tags.get(T.ENV_MANAGER) or None)
    try:  # only what the runner passed: params the job logged itself are not entry-point parameters
        params = json.loads(tags[T.PROJECT_PARAMS])
    except (KeyError, ValueError):
        params = dict(original.data.params)
    submitted = run(uri, tags.get(T.ENTRY_POINT, "main"), params, version=version,
                    spark=SparkOptions(master=master or tags.get(T.MASTER), conf=spark_conf or {}),
                    env=EnvOptions(manager=manager, cache_dir=env_cache_dir, progress=progress),
                    tracking=TrackingOptions(experiment_id=original.info.experiment_id, tracking_uri=tracking_uri,
                                             run_name=f"rebuild of {original.info.run_name or run_id}",
                                             tags={T.REBUILD_OF: run_id}, pin_inputs=pins),
                    stream_output=stream_output, synchronous=True)
    new = client.get_run(submitted.run_id)
    diffs = compare_metrics(original.data.metrics, new.data.metrics)
    env_ok = tags.get(T.ENV_HASH) == new.data.tags.get(T.ENV_HASH)
    client.set_tag(submitted.run_id, T.METRICS_MATCH, str(not diffs).lower())
    return RebuildResult(run_id, submitted.run_id, submitted.get_status(), env_ok, not diffs, diffs, pins)
