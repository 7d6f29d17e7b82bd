"""Hyperparameter tuning on Spark: Optuna ask/tell, each trial a Spark task and an MLflow child run.

``tune(objective, space, max_trials=...)`` tunes a Python function on the executors;
``tune_project(uri, space, ...)`` tunes an MLflow project, one spark-submit job per trial.
Studies live in the tracking root and resume from it (``resume=parent_run_id``).
Importing this package starts no JVM and imports neither Optuna nor Spark.
"""

from sparkml_ops.tuning.api import tune, tune_project
from sparkml_ops.tuning.result import TuneResult
from sparkml_ops.tuning.space import choice, loguniform, randint, uniform

__all__ = ["TuneResult", "choice", "loguniform", "randint", "tune", "tune_project", "uniform"]
