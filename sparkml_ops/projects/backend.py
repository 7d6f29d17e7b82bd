"""MLflow project backend plugin: ``mlflow.projects.run(uri, backend="spark-submit")``.

Registered under the ``mlflow.project_backend`` entry-point group as ``spark-submit``.
``backend_config`` keys (all optional): ``master``, ``deploy_mode``, ``conf`` (mapping),
``spark_args`` (list), ``env_cache_dir``; MLflow adds ``ENV_MANAGER`` and ``SYNCHRONOUS``.
MLflow itself waits for a synchronous run; the backend always returns at once.
"""

from __future__ import annotations

from mlflow.projects.backend.abstract_backend import AbstractBackend

from sparkml_ops.errors import BadInput


class SparkSubmitBackend(AbstractBackend):
    def run(self, project_uri, entry_point, params, version, backend_config, tracking_uri, experiment_id):
        from sparkml_ops.projects.options import EnvOptions, SparkOptions, TrackingOptions
        from sparkml_ops.projects.runner import run

        config = dict(backend_config or {})
        conf = config.get("conf") or {}
        if not isinstance(conf, dict):
            raise BadInput(f"backend_config 'conf' must be a mapping of Spark settings, got {conf!r}")
        spark_args = config.get("spark_args") or []
        if isinstance(spark_args, str) or not isinstance(spark_args, list):
            raise BadInput(f"backend_config 'spark_args' must be a list of arguments, got {spark_args!r}")
        return run(project_uri, entry_point or "main", params or {}, version=version,
                   spark=SparkOptions(master=config.get("master"), deploy_mode=config.get("deploy_mode", "client"),
                                      conf=conf, args=spark_args),
                   env=EnvOptions(manager=config.get("ENV_MANAGER"), cache_dir=config.get("env_cache_dir")),
                   tracking=TrackingOptions(experiment_id=experiment_id, tracking_uri=tracking_uri),
                   synchronous=False, stream_output=bool(config.get("stream_output", True)))


def spark_submit_backend() -> SparkSubmitBackend:
    """Entry-point target (MLflow calls it with no arguments)."""
    return SparkSubmitBackend()
