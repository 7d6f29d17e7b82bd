"""Tuning on Spark: ``sparkml_ops.tuning.tune`` against Hyperopt's ``SparkTrials`` in the same run.

    python bench/bench_tuning.py [--quick] [--only wall,overhead,quality]

* ``wall``: N trials of a trivial objective at parallelism 2 (N=200; 40 with --quick),
  wall time, ours (each trial a child run in a Delta root) vs ``fmin(..., SparkTrials(2))``
  (which tracks nothing). Target: <= 0.5x Hyperopt's.
* ``overhead``: per-trial overhead of ours (scheduling + child-run logging): slot time per
  trial, ``wall * parallelism / N`` minus the objective's own time (~0). Target: <= 100 ms.
* ``quality``: best Branin value after 50 trials, median over 5 seeds: ours (TPE, on Spark,
  parallelism 2) vs Hyperopt's TPE (sequential: its best case). Target: <= Hyperopt's.

Both sides share one local[2] Spark session; warm-up runs of each come first.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emit, parse_args, reference_env, workdir  # noqa: E402

GROUPS = ("wall", "overhead", "quality")
BRANIN_MIN = 0.397887


def trivial(params: dict) -> float:
    return params["x"]


def branin(params: dict) -> float:
    x, y = params["x"], params["y"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def spark_session():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("bench-tuning")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.pyspark.python", sys.executable).config("spark.default.parallelism", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def ours(spark, objective, space, n: int, seed: int, parallelism: int = 2) -> tuple[float, float]:
    """(seconds, best value) of one study of ours."""
    from sparkml_ops.tuning import tune

    started = time.perf_counter()
    result = tune(objective, space, max_trials=n, parallelism=parallelism, seed=seed, spark=spark)
    return time.perf_counter() - started, result.best_value


def hyperopt_spark(spark, objective, space, n: int, seed: int) -> tuple[float, float]:
    """(seconds, best value) of ``fmin`` with ``SparkTrials(parallelism=2)``."""
    import numpy as np
    from hyperopt import SparkTrials, fmin, tpe

    trials = SparkTrials(parallelism=2, spark_session=spark)
    started = time.perf_counter()
    fmin(objective, space, algo=tpe.suggest, max_evals=n, trials=trials, rstate=np.random.default_rng(seed),
         show_progressbar=False)
    return time.perf_counter() - started, min(trials.losses())


def hyperopt_tpe(objective, space, n: int, seed: int) -> float:
    import numpy as np
    from hyperopt import Trials, fmin, tpe

    trials = Trials()
    fmin(objective, space, algo=tpe.suggest, max_evals=n, trials=trials, rstate=np.random.default_rng(seed),
         show_progressbar=False)
    return min(trials.losses())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], groups=GROUPS)
    reference_env()
    os.environ.setdefault("SPARKML_OPS_FLUSH_INTERVAL_MS", "200")
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    import mlflow
    from hyperopt import hp

    from sparkml_ops.tuning import uniform

    n = 40 if args.quick else 200
    spark = spark_session()
    with workdir(args.workdir) as tmp:
        mlflow.set_tracking_uri(f"delta:{tmp / 'lake'}")
        ours_trivial = {"x": uniform(0, 1)}
        ref_trivial = {"x": hp.uniform("x", 0, 1)}
        ours(spark, trivial, ours_trivial, 6, 0)  # warm-up: JVM, Python workers, the lake
        hyperopt_spark(spark, trivial, ref_trivial, 4, 0)
        if "wall" in args.only or "overhead" in args.only:
            ours_s, _ = ours(spark, trivial, ours_trivial, n, 1)
            ref_s, _ = hyperopt_spark(spark, trivial, ref_trivial, n, 1)
            if "wall" in args.only:
                emit("tuning_wall_time_trivial_trials", ours=ours_s, reference={"hyperopt_sparktrials": ref_s},
                     unit="s", better="lower", n=n, parallelism=2,
                     ours_vs_reference=round(ours_s / ref_s, 3), target_vs_reference=0.5,
                     target_vs_reference_met=ours_s <= 0.5 * ref_s)
            if "overhead" in args.only:
                per_trial_ms = ours_s * 2 / n * 1000
                emit("tuning_per_trial_overhead", ours=per_trial_ms,
                     reference={"hyperopt_sparktrials": ref_s * 2 / n * 1000}, unit="ms", better="lower",
                     target=100.0, n=n, parallelism=2, note="slot time per trial, objective ~0 ms")
        if "quality" in args.only:
            seeds = range(3) if args.quick else range(5)
            ours_best = [ours(spark, branin, {"x": uniform(-5, 10), "y": uniform(0, 15)}, 50, s)[1] for s in seeds]
            ref_space = {"x": hp.uniform("x", -5, 10), "y": hp.uniform("y", 0, 15)}
            ref_best = [hyperopt_tpe(branin, ref_space, 50, s) for s in seeds]
            ours_med, ref_med = statistics.median(ours_best), statistics.median(ref_best)
            emit("tuning_branin_best_after_50", ours=ours_med, reference={"hyperopt_tpe": ref_med}, unit="loss",
                 better="lower", n=len(seeds), optimum=BRANIN_MIN, ours_all=ours_best, reference_all=ref_best,
                 target_met_vs_reference=ours_med <= ref_med)
    spark.stop()


if __name__ == "__main__":
    main()
