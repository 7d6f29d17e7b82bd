"""A study driver in its own process, for the SIGKILL-and-resume test: ``python driver.py ROOT MAX_TRIALS``."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    root, max_trials = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import mlflow
    from pyspark.sql import SparkSession

    from sparkml_ops.tuning import tune, uniform
    from tests.tuning.objectives import sleepy

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.pyspark.python", sys.executable)
             .getOrCreate())
    mlflow.set_tracking_uri(f"delta:{root}")
    tune(sleepy, {"x": uniform(-5, 5)}, max_trials=max_trials, parallelism=2, seed=7, spark=spark,
         experiment="killed-study")
