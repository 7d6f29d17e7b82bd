"""``sparkml-ops run|rebuild``: MLflow projects as tracked spark-submit jobs."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import TYPE_CHECKING

import click

from sparkml_ops.cli.options import conf_option, master_option, parse_pairs, root_option

if TYPE_CHECKING:
    from sparkml_ops.projects.options import DeployMode, EnvManagerName


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both cancel the job (KILLED), even when SIGINT was inherited as ignored."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)


@click.command(short_help="Run an MLflow project as a spark-submit job.")
@click.argument("uri")
@click.option("-e", "--entry-point", default="main", show_default=True, help="entry point name or .py/.sh file")
@click.option("-v", "--version", help="git commit, tag or branch (git URIs only)")
@click.option("-P", "--param", "params", multiple=True, metavar="KEY=VALUE", callback=parse_pairs,
              help="entry-point parameter (repeatable)")
@master_option(None, "local[*] (default), local[N], spark://HOST:PORT, yarn, k8s://https://HOST:PORT")
@click.option("--deploy-mode", type=click.Choice(["client", "cluster"]), default="client", show_default=True)
@conf_option()
@click.option("--spark-arg", multiple=True, metavar="ARG",
              help="extra spark-submit argument, e.g. --spark-arg=--num-executors --spark-arg=4 (repeatable)")
@click.option("--env-manager", type=click.Choice(["virtualenv", "local", "conda", "uv"]),
              help="virtualenv (default: packed env), local (this Python) or conda")
@click.option("--experiment-name")
@click.option("--experiment-id")
@click.option("--run-name")
@root_option
def run(uri: str, entry_point: str, version: str | None, params: dict[str, str], master: str | None,
        deploy_mode: DeployMode, conf: dict[str, str], spark_arg: tuple[str, ...],
        env_manager: EnvManagerName | None,
        experiment_name: str | None, experiment_id: str | None, run_name: str | None, root: str | None) -> int:
    """Run an MLflow project (URI: a local directory or git URL[#subdir]) as a tracked spark-submit job
    with a packed Python environment. Exits 0 when the run finishes, 1 when it fails, 130 when cancelled."""
    from sparkml_ops import config
    from sparkml_ops.projects.options import EnvOptions, SparkOptions, TrackingOptions
    from sparkml_ops.projects.runner import run as run_project

    spark_args: list[str] = []
    for item in spark_arg:
        spark_args += item.split() if item.startswith("--") and " " in item else [item]
    submitted = run_project(uri, entry_point, params, version=version,
                            spark=SparkOptions(master=master, deploy_mode=deploy_mode, conf=conf, args=spark_args),
                            env=EnvOptions(manager=env_manager),
                            tracking=TrackingOptions(experiment_name=experiment_name, experiment_id=experiment_id,
                                                     run_name=run_name, tracking_uri=config.tracking_uri(root)),
                            synchronous=False)
    click.echo(f"sparkml_ops: run {submitted.run_id} submitted", err=True)
    _interrupt_on_signals()
    try:
        ok = submitted.wait()
    except KeyboardInterrupt:
        click.echo(json.dumps({"run_id": submitted.run_id, "status": submitted.get_status()}))
        return 130
    click.echo(json.dumps({"run_id": submitted.run_id, "status": submitted.get_status()}))
    sys.stdout.flush()
    return 0 if ok else 1


@click.command(short_help="Re-run a finished project run with the same commit, params, env and data.")
@click.argument("run_id")
@master_option(None, "override the original run's Spark master")
@root_option
def rebuild(run_id: str, master: str | None, root: str | None) -> int:
    """Re-run a project run with the same source commit, parameters, environment and pinned Delta input
    versions; exits 0 when the metrics match, 3 when not, 1 when the run fails."""
    from sparkml_ops import config
    from sparkml_ops.projects.rebuild import rebuild as rebuild_run

    result = rebuild_run(run_id, tracking_uri=config.tracking_uri(root), master=master)
    click.echo(json.dumps(result.as_dict()))
    if result.status != "FINISHED":
        return 1
    return 0 if result.metrics_match else 3
