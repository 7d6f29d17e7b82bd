"""Objectives the tuning tests run on Spark executors (pickled by value: workers need not import tests/)."""

from __future__ import annotations

import math
import os
import sys
import time

import cloudpickle

cloudpickle.register_pickle_by_value(sys.modules[__name__])

BRANIN_MIN = 0.397887


def branin(params: dict) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; global minimum 0.397887 at three points."""
    x, y = params["x"], params["y"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def quadratic_logging(params: dict) -> dict:
    """Logs per-epoch metrics and a tag into the active (trial) run, returns two metrics."""
    import mlflow

    run = mlflow.active_run()
    for epoch in range(3):
        mlflow.log_metric("epoch_loss", (params["x"] - 1) ** 2 + 1.0 / (epoch + 1), step=epoch)
    mlflow.set_tag("seen_run_id", run.info.run_id if run else "none")
    mlflow.log_param("pid", os.getpid())
    return {"loss": (params["x"] - 1) ** 2, "other": float(params["k"])}


def fails_on_negative(params: dict) -> float:
    if params["x"] < 0:
        raise ValueError(f"x={params['x']} is negative")
    return params["x"]


def sleepy(params: dict) -> float:
    time.sleep(float(os.environ.get("TUNING_TEST_SLEEP", "0.5")))
    return (params["x"] - 2) ** 2


def trivial(params: dict) -> float:
    return params["x"]


def nested(params: dict) -> float:
    model = params["model"]
    if model["kind"] == "linear":
        return abs(math.log10(model["alpha"]) + 2)
    return abs(model["depth"] - 4) + 0.5


def no_metric(params: dict) -> dict:
    return {"accuracy": params["x"]}


def nan_result(params: dict) -> float:
    return float("nan")


def text_result(params: dict) -> str:
    return "good"
