"""``sparkml-ops run`` and ``sparkml-ops rebuild`` (wired into the CLI with :func:`register`)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from sparkml_ops import config


def _tracking_uri(root: str | None) -> str:
    return config.tracking_uri(root)


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both cancel the job (KILLED), even when SIGINT was inherited as ignored."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)


def cmd_run(args: argparse.Namespace) -> int:
    from sparkml_ops.projects.runner import run

    spark_args: list[str] = []
    for item in args.spark_arg or []:
        spark_args += item.split() if item.startswith("--") and " " in item else [item]
    submitted = run(args.uri, args.entry_point, config.parse_pairs(args.param, "-P"), version=args.version,
                    master=args.master, deploy_mode=args.deploy_mode,
                    spark_conf=config.parse_pairs(args.conf, "--conf"),
                    spark_args=spark_args, env_manager=args.env_manager, experiment_name=args.experiment_name,
                    experiment_id=args.experiment_id, run_name=args.run_name,
                    tracking_uri=_tracking_uri(args.root), synchronous=False)
    print(f"sparkml_ops: run {submitted.run_id} submitted", file=sys.stderr)
    _interrupt_on_signals()
    try:
        ok = submitted.wait()
    except KeyboardInterrupt:
        print(json.dumps({"run_id": submitted.run_id, "status": submitted.get_status()}))
        return 130
    print(json.dumps({"run_id": submitted.run_id, "status": submitted.get_status()}))
    return 0 if ok else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    from sparkml_ops.projects.rebuild import rebuild

    result = rebuild(args.run_id, tracking_uri=_tracking_uri(args.root), master=args.master)
    print(json.dumps(result.as_dict()))
    if result.status != "FINISHED":
        return 1
    return 0 if result.metrics_match else 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="Run an MLflow project as a spark-submit job.",
                       description="Run an MLflow project (local directory or git URL[#subdir]) as a tracked "
                                   "spark-submit job with a packed Python environment.")
    p.add_argument("uri", help="project directory or git URL, optionally with #subdirectory")
    p.add_argument("-e", "--entry-point", default="main", help="entry point name or .py/.sh file (default: main)")
    p.add_argument("-v", "--version", help="git commit, tag or branch (git URIs only)")
    p.add_argument("-P", "--param", action="append", metavar="KEY=VALUE", help="entry-point parameter (repeatable)")
    p.add_argument("--master", help="local[*] (default), local[N], spark://HOST:PORT, yarn, k8s://https://HOST:PORT")
    p.add_argument("--deploy-mode", choices=["client", "cluster"], default="client")
    p.add_argument("--conf", action="append", metavar="KEY=VALUE", help="Spark setting (repeatable)")
    p.add_argument("--spark-arg", action="append", metavar="ARG",
                   help="extra spark-submit argument, e.g. --spark-arg=--num-executors --spark-arg=4 (repeatable)")
    p.add_argument("--env-manager", choices=["virtualenv", "local", "conda", "uv"],
                   help="virtualenv (default: packed env), local (this Python) or conda")
    p.add_argument("--experiment-name")
    p.add_argument("--experiment-id")
    p.add_argument("--run-name")
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("rebuild", help="Re-run a finished project run with the same commit, params, env and data.",
                       description="Re-run a project run with the same source commit, parameters, environment "
                                   "and pinned Delta input versions; exits 0 when the metrics match, 3 when not.")
    p.add_argument("run_id")
    p.add_argument("--master", help="override the original run's Spark master")
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.set_defaults(func=cmd_rebuild)
