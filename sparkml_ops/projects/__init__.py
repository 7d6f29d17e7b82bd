"""MLflow projects as spark-submit jobs with packed environments.

``run(uri, entry_point, parameters, *, spark=SparkOptions(…), env=EnvOptions(…),
tracking=TrackingOptions(…))`` returns a :class:`SubmittedRun`;
``rebuild(run_id)`` re-runs a finished run with the same commit, parameters, environment and
pinned input versions. Also an MLflow project backend (``backend="spark-submit"``).
Importing this package starts no JVM.
"""

from sparkml_ops.projects.options import DeployMode, EnvManagerName, EnvOptions, SparkOptions, TrackingOptions
from sparkml_ops.projects.rebuild import RebuildResult, rebuild
from sparkml_ops.projects.runner import run
from sparkml_ops.projects.submitted import SubmittedRun

__all__ = ["DeployMode", "EnvManagerName", "EnvOptions", "RebuildResult", "SparkOptions", "SubmittedRun",
           "TrackingOptions", "rebuild", "run"]
