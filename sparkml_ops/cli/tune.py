"""``sparkml-ops tune``: tune an MLflow project, one spark-submit job per trial, trials as child runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from sparkml_ops.cli.options import conf_option, master_option, root_option

if TYPE_CHECKING:
    from sparkml_ops.projects.options import EnvManagerName
    from sparkml_ops.tuning.api import Mode, SamplerName


def _spaces(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """Repeated ``--space NAME=KIND:ARGS`` as a search space (errors name the bad spec)."""
    from sparkml_ops.errors import BadInput
    from sparkml_ops.tuning.space import parse_spec

    space: dict[str, Any] = {}
    for spec in values:
        try:
            name, dist = parse_spec(spec)
        except BadInput as exc:
            raise click.BadParameter(exc.message, ctx=ctx, param=param) from None
        if name in space:
            raise click.BadParameter(f"parameter {name!r} is given twice", ctx=ctx, param=param)
        space[name] = dist
    return space


@click.command(short_help="Tune an MLflow project: parallel spark-submit trials as child runs.")
@click.argument("uri")
@click.option("-e", "--entry-point", default="main", show_default=True, help="entry point name")
@click.option("--space", "space", multiple=True, required=True, metavar="NAME=KIND:ARGS", callback=_spaces,
              help="a tuned parameter (repeatable): uniform:LO:HI, loguniform:LO:HI, randint:LO:HI, choice:A,B,...")
@click.option("--metric", required=True, help="metric the entry point logs, optimised")
@click.option("--mode", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--max-trials", type=int, required=True, help="trials to end (finished + failed)")
@click.option("--parallelism", type=int, default=2, show_default=True, help="spark-submit jobs at once")
@click.option("--sampler", type=click.Choice(["tpe", "random", "grid"]), default="tpe", show_default=True)
@click.option("--seed", type=int, help="sampler seed")
@click.option("--timeout", "timeout_s", type=float, help="stop launching trials after this many seconds")
@click.option("--max-failures", type=int, help="stop launching after this many failed trials")
@click.option("--patience", type=int, help="stop after this many trials without improvement")
@master_option(None, "Spark master of every trial: local[*] (default), local[N], spark://HOST:PORT, yarn, k8s://…")
@click.option("--env-manager", type=click.Choice(["virtualenv", "local", "conda", "uv"]),
              help="virtualenv (default: packed env), local (this Python) or conda")
@conf_option()
@click.option("--experiment-name", help="experiment of the study (default: the active one)")
@click.option("--run-name", help="name of the study's parent run")
@click.option("--resume", metavar="PARENT_RUN_ID", help="continue the study of this parent run")
@root_option
def tune(uri: str, entry_point: str, space: dict[str, Any], metric: str, mode: Mode, max_trials: int, parallelism: int,
         sampler: SamplerName, seed: int | None, timeout_s: float | None, max_failures: int | None,
         patience: int | None, master: str | None, env_manager: EnvManagerName | None, conf: dict[str, str],
         experiment_name: str | None, run_name: str | None, resume: str | None, root: str | None) -> int:
    """Tune the project at URI with Optuna: each trial runs ENTRY with the trial's values as project
    parameters as a spark-submit job (PARALLELISM at once), and reads METRIC back from its run. Prints
    the best parameters, value and runs as JSON."""
    import mlflow

    from sparkml_ops import config
    from sparkml_ops.tuning import tune_project

    mlflow.set_tracking_uri(config.tracking_uri(root))
    result = tune_project(uri, space, entry_point=entry_point, max_trials=max_trials, parallelism=parallelism,
                          metric=metric, mode=mode, experiment=experiment_name, run_name=run_name,
                          sampler=sampler, seed=seed, timeout_s=timeout_s, max_failures=max_failures,
                          patience=patience, master=master, env_manager=env_manager, spark_conf=conf,
                          resume=resume)
    trials = result.trials[["number", "run_id", "status", metric]].to_dict(orient="records")
    click.echo(json.dumps({"best_params": result.best_params, "best_value": result.best_value,
                           "best_run_id": result.best_run_id, "parent_run_id": result.parent_run_id,
                           "trials": trials}, default=str))
    return 0
