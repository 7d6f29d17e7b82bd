"""A model's Python environment on Spark: compare it with this one, or build it packed.

``env="local"`` scores with the interpreter the session already runs and warns with the
exact differences from the model's requirements. ``env="packed"`` builds the model's env
once (``sparkml_ops.envs``, cached by content hash in ``<root>/envs`` for a local tracking
root) and runs the executors' Python from it; that has to be decided before the
SparkContext starts, so it is what jobs launched by ``sparkml-ops score`` do.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Literal

from sparkml_ops.errors import BadInput, InvalidState, NotFound
from sparkml_ops.models.resolve import ResolvedModel

EnvMode = Literal["local", "packed"]
ENV_MODES = ("local", "packed")
# What Spark's Python workers need to exchange Arrow batches, whatever the model needs.
WORKER_RUNTIME = ("pyarrow", "pandas")


class ModelEnvWarning(UserWarning):
    """The interpreter scoring a model differs from the model's logged requirements."""


def check_mode(env: str) -> str:
    if env not in ENV_MODES:
        raise BadInput(f"env {env!r} must be one of {list(ENV_MODES)}")
    return env


def model_requirements(model: ResolvedModel) -> list[str]:
    from sparkml_ops.envs import requirements_from_model

    try:
        return requirements_from_model(Path(model.path))
    except NotFound:
        return []


def warn_local_differences(model: ResolvedModel, stacklevel: int = 3) -> list[str]:
    """Warn (once per call) with each difference between the model's requirements and this env."""
    from sparkml_ops.envs import compare_with_current

    differences = compare_with_current(model_requirements(model))
    if differences:
        warnings.warn(
            f"model {model.label} was logged with requirements this Python ({sys.executable}) does not meet: "
            + "; ".join(differences) + ". Scoring anyway (env='local'); use env='packed' to run the model's own env.",
            ModelEnvWarning, stacklevel=stacklevel)
    return differences


def default_env_cache() -> Path | None:
    """``<root>/envs`` next to the artifacts when the tracking root is local and no cache is
    configured; None means the configured (or default) cache."""
    import mlflow

    from sparkml_ops import config

    if config.is_configured("env_cache_dir"):
        return None
    uri = mlflow.get_tracking_uri() or ""
    if uri.startswith("delta:"):
        from sparkml_ops.lake import parse_root

        try:
            location = parse_root(uri)
        except BadInput:
            return None
        if location.is_local:
            return Path(location.uri) / "envs"
    return None


def packed_requirements(model: ResolvedModel) -> list[str]:
    """The model's requirements plus what Spark's Python workers need (pinned to this env's versions)."""
    from packaging.requirements import InvalidRequirement, Requirement

    from sparkml_ops.envs import pinned_current

    reqs = model_requirements(model)
    named = set()
    for line in reqs:
        try:
            named.add(Requirement(line).name.lower())
        except InvalidRequirement:
            continue
    return reqs + pinned_current([name for name in WORKER_RUNTIME if name not in named])


def build_model_env(model: ResolvedModel, *, cache_dir: str | Path | None = None, progress: bool = True):
    """Build (or take from the cache) the model's packed env; returns ``sparkml_ops.envs.PackedEnv``."""
    from sparkml_ops.envs import build_packed_env, python_version_from_model

    cache = Path(cache_dir) if cache_dir else default_env_cache()
    return build_packed_env(packed_requirements(model), python_version=python_version_from_model(Path(model.path)),
                            cache_dir=cache, progress=progress)


def require_packed_session(spark, model: ResolvedModel, *, cache_dir: str | Path | None = None,
                           progress: bool = True):
    """Check that ``spark``'s executors already run the model's packed env; else say how to submit."""
    from sparkml_ops.envs import spark_conf, spark_submit_args

    try:
        master = spark.conf.get("spark.master", None)
        current = spark.conf.get("spark.pyspark.python", None)
    except Exception:  # noqa: BLE001 - Spark Connect may hide static confs
        master, current = None, None
    if not current or current == sys.executable:  # workers run the driver's Python: no packed env in use
        raise InvalidState(
            f"env='packed' needs a session whose executors run model {model.label}'s packed env, set before "
            f"the SparkContext starts (spark.pyspark.python is {current!r} here). "
            "Run `sparkml-ops score --env packed`, or submit with the arguments from "
            "sparkml_ops.models.environment.submit_args(model); use env='local' in an interactive session.")
    env = build_model_env(model, cache_dir=cache_dir, progress=progress)
    expected = spark_conf(env, master=master)["spark.pyspark.python"]
    if current != expected:
        args = " ".join(spark_submit_args(env, master=master))
        raise InvalidState(
            f"env='packed' needs the executors to run the model's env before the session starts "
            f"(spark.pyspark.python is {current!r}, expected {expected!r}). Submit the job with: {args} "
            "— or run `sparkml-ops score --env packed`, which does so.")
    return env


def submit_args(model, *, master: str | None = None, cache_dir: str | Path | None = None,
                progress: bool = True) -> list[str]:
    """``spark-submit`` arguments that run the executors' Python from ``model``'s packed env."""
    from sparkml_ops.envs import spark_submit_args
    from sparkml_ops.models.resolve import resolve_model

    env = build_model_env(resolve_model(model), cache_dir=cache_dir, progress=progress)
    return spark_submit_args(env, master=master)
