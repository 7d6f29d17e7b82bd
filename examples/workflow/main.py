"""The whole workflow, composed from Python: load -> train (several params) -> pick best -> score.

    python examples/workflow/main.py [--regs 0.01,0.1,1] [--rows 5000] [--env-manager local]
                                     [--master local[2]] [--root PATH] [--out DIR]

Each step is a tracked spark-submit run (``sparkml_ops.projects.run``) grouped under one parent
run; the best training run is picked with ``mlflow.search_runs``. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow

from sparkml_ops import config
from sparkml_ops.projects import EnvOptions, SparkOptions, TrackingOptions, run

HERE = Path(__file__).resolve().parent


def step(name: str, params: dict, parent: str, args: argparse.Namespace) -> str:
    submitted = run(str(HERE), name, params, spark=SparkOptions(master=args.master, conf={"spark.ui.enabled": "false"}),
                    env=EnvOptions(manager=args.env_manager),
                    tracking=TrackingOptions(tags={"mlflow.parentRunId": parent, "workflow.step": name}),
                    stream_output=args.verbose)
    if submitted.get_status() != "FINISHED":
        raise SystemExit(f"step {name} ({submitted.run_id}) ended {submitted.get_status()}")
    return submitted.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regs", default="0.01,0.1,1.0", help="comma-separated regularisation strengths")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--env-manager", default=None, help="virtualenv (default) or local")
    parser.add_argument("--root", default=None, help="tracking root (default: the configured root)")
    parser.add_argument("--out", default="workflow-out", help="directory for data and predictions")
    parser.add_argument("--verbose", action="store_true", help="stream each job's output")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    mlflow.set_tracking_uri(config.tracking_uri(args.root))
    mlflow.set_experiment("workflow")
    with mlflow.start_run(run_name="workflow") as parent:
        pid = parent.info.run_id
        data = str(out / "data")
        step("load", {"rows": args.rows, "out": data}, pid, args)
        for reg in args.regs.split(","):
            step("train", {"data": data, "reg": reg.strip()}, pid, args)
        best = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{pid}' and "
                                                "tags.`workflow.step` = 'train' and attributes.status = 'FINISHED'",
                                  order_by=["metrics.accuracy DESC"], max_results=1)
        best_id = best.loc[0, "run_id"]
        mlflow.set_tag("best_run_id", best_id)
        mlflow.log_metric("best_accuracy", float(best.loc[0, "metrics.accuracy"]))
        score_id = step("score", {"model_uri": f"runs:/{best_id}/model", "data": data,
                                  "out": str(out / "predictions")}, pid, args)
    print(json.dumps({"parent_run_id": pid, "best_run_id": best_id, "best_reg": best.loc[0, "params.reg"],
                      "best_accuracy": float(best.loc[0, "metrics.accuracy"]), "score_run_id": score_id,
                      "predictions": str(out / "predictions")}))


if __name__ == "__main__":
    main()
