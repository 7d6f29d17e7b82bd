"""``sparkml-ops score`` and ``sparkml-ops models serve``: scoring jobs and the REST scoring server."""

from __future__ import annotations

import shlex

import click

from sparkml_ops.cli.options import comma_list, conf_option, master_option, model_option, root_option

INPUT_FORMATS = ("auto", "csv", "delta", "json", "parquet", "rate")  # jobio's batch and stream input formats
MODEL_HELP = ("models:/<name>@<alias>, models:/<name>/<version|latest>, run id, runs:/<run>/<path>, "
              "models:/<model_id>, logged-model:/<name>/latest or a path")


@click.command(short_help="Score a dataset or a stream with an MLflow model (spark-submit job).")
@root_option
@model_option(MODEL_HELP)
@click.option("--input", "-i", "input_path", required=True,
              help="input path (Parquet/JSON/CSV/Delta); 'rate' with --stream")
@click.option("--output", "-o", required=True, help="output Delta table (or Parquet dir with --format parquet)")
@click.option("--format", "fmt", type=click.Choice(("delta", "parquet")), default="delta", show_default=True,
              help="output format")
@click.option("--input-format", type=click.Choice(INPUT_FORMATS), default="auto", show_default=True,
              help="batch: auto|parquet|json|csv|delta; stream: auto|parquet|json|rate")
@click.option("--mode", type=click.Choice(("append", "overwrite")), default="append", show_default=True,
              help="batch output mode")
@master_option("local[2]", "Spark master")
@click.option("--env", type=click.Choice(("local", "packed")), default="local", show_default=True,
              help="local: this Python (warns on differences); packed: the model's own env, built once")
@click.option("--env-cache", default=None, help="packed env cache (default: <root>/envs for a local root)")
@click.option("--output-col", default="prediction", show_default=True, help="column for the predictions")
@click.option("--columns", callback=comma_list, metavar="A,B,...",
              help="comma-separated input columns in the model's order (default: the signature's names; "
                   "required for a model with a tensor signature or none)")
@click.option("--batch-size", type=int, default=50_000, show_default=True, help="rows per model call")
@conf_option("extra Spark setting KEY=VALUE (repeatable)")
@click.option("--job-id", default=None, help="batch: idempotency key of the Delta commit")
@click.option("--report", default=None, help="write the job's result JSON to this file")
@click.option("--stream", is_flag=True, help="score a stream (file source or 'rate') into Delta")
@click.option("--checkpoint", default=None, help="stream checkpoint (default <output>/_checkpoint)")
@click.option("--reload-every", type=int, default=0,
              help="stream: re-resolve the model every N seconds, e.g. to follow models:/<name>@<alias> (0: never)")
@click.option("--trigger-seconds", type=float, default=1.0, show_default=True, help="stream: micro-batch interval")
@click.option("--max-files-per-trigger", type=int, default=None, help="stream: files per micro-batch")
@click.option("--rows-per-second", type=int, default=100, show_default=True, help="stream: rate source speed")
@click.option("--available-now", is_flag=True, help="stream: process what is there, then stop")
@click.option("--timeout", type=float, default=None, help="stream: stop after this many seconds")
@click.option("--dry-run", is_flag=True, help="print the spark-submit command instead of running it")
@click.option("--quiet", is_flag=True, help="no env build progress")
def score(root: str | None, input_path: str, fmt: str, master: str, conf: dict[str, str], dry_run: bool,
          quiet: bool, **options: object) -> int:
    """Score a dataset or a stream with an MLflow model as a spark-submit job.

    The model is resolved (and, with --env packed, its packed env built or reused) here, then
    spark-submit runs the batch or stream scoring job with one JSON job spec; the exit code is the job's.
    """
    import mlflow

    from sparkml_ops import config
    from sparkml_ops.models.jobio import ScoreSpec
    from sparkml_ops.models.jobs import prepare_job, run_job

    tracking_uri = config.tracking_uri(root)
    mlflow.set_tracking_uri(tracking_uri)
    spec = ScoreSpec(input=input_path, format=fmt, tracking_uri=tracking_uri, **options)  # type: ignore[arg-type]
    job = prepare_job(spec, master=master, progress=not quiet, conf=conf)
    if dry_run:
        click.echo(shlex.join(job.command))
        return 0
    return run_job(job)


@click.group()
def models() -> None:
    """Serve MLflow models; list, inspect and promote registered models."""


SERVE_LEVELS = ("critical", "error", "warning", "info", "debug")


@models.command(short_help="Serve a model over MLflow's REST scoring protocol (POST /invocations).")
@model_option(MODEL_HELP)
@root_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("-p", "--port", type=int, default=5000, show_default=True, help="port to bind")
@click.option("-w", "--workers", type=int, default=1, show_default=True, help="uvicorn worker processes")
@click.option("--max-batch-rows", type=int, default=None,
              help="most rows scored in one micro-batch (setting serve_max_batch_rows, default 512)")
@click.option("--max-wait-ms", type=float, default=None,
              help="longest a request waits for a batch to fill (setting serve_max_wait_ms, default 0: batch "
                   "only what is already queued)")
@click.option("--max-body-bytes", type=int, default=None,
              help="largest request body; bigger ones get 413 (setting serve_max_body_bytes, default 64 MiB)")
@click.option("--graceful-timeout", type=int, default=None,
              help="seconds in-flight requests get after SIGTERM (setting serve_graceful_timeout_s, default 30)")
@click.option("--no-fast-path", is_flag=True,
              help="score every request through MLflow's pyfunc path (no numpy fast path)")
@click.option("--access-log", is_flag=True, help="log every request (slower)")
@click.option("--log-level", type=click.Choice(SERVE_LEVELS), default="info", show_default=True)
@click.option("--follow", is_flag=True,
              help="re-resolve a registry URI (models:/<name>@<alias>) every --follow-interval seconds and swap to "
                   "a new version without failing a request")
@click.option("--follow-interval", type=float, default=5.0, show_default=True,
              help="seconds between re-resolutions with --follow")
def serve(model: str, root: str | None, host: str, port: int, workers: int, max_batch_rows: int | None,
          max_wait_ms: float | None, max_body_bytes: int | None, graceful_timeout: int | None, no_fast_path: bool,
          access_log: bool, log_level: str, follow: bool, follow_interval: float) -> None:
    """Serve a model over MLflow's REST scoring protocol (POST /invocations)."""
    from sparkml_ops import config
    from sparkml_ops.models.serving.server import serve as serve_model
    from sparkml_ops.models.serving.settings import ServeConfig

    knobs = {"max_batch_rows": max_batch_rows, "max_wait_ms": max_wait_ms, "max_body_bytes": max_body_bytes,
             "graceful_timeout_s": graceful_timeout}
    tuned = {name: config.resolve(f"serve_{name}", value) for name, value in knobs.items()}
    settings = ServeConfig(model_uri=model, host=host, port=port, workers=workers, fast_path=not no_fast_path,
                           access_log=access_log, log_level=log_level, follow=follow,
                           follow_interval_s=follow_interval, **tuned)
    serve_model(settings, tracking_uri=config.tracking_uri(root))


@models.command("compile", short_help="Print a model as one Spark SQL expression (or why it does not compile).")
@click.argument("model_uri")
@root_option
@click.option("--columns", callback=comma_list, metavar="A,B,...",
              help="input column names to use in the expression (default: the signature's names)")
def compile_model(model_uri: str, root: str | None, columns: tuple[str, ...]) -> int:
    """Print MODEL_URI's prediction as a Spark SQL expression, for ``SELECT …, <expr> AS prediction FROM t``.

    Exit code 0 and the expression on stdout when the model compiles; exit code 1 and the
    reason (naming the part that does not compile) on stderr when it does not.
    """
    import mlflow

    from sparkml_ops import config
    from sparkml_ops.models.compile import NotCompilable, to_sql

    mlflow.set_tracking_uri(config.tracking_uri(root))
    try:
        click.echo(to_sql(model_uri, columns=list(columns) or None))
    except NotCompilable as exc:
        click.echo(f"model {model_uri} does not compile to Spark SQL: {exc.message}", err=True)
        return 1
    return 0


def _register_registry_commands() -> None:
    from sparkml_ops.cli.registry import list_models, promote, versions

    for command in (list_models, versions, promote):
        models.add_command(command)


_register_registry_commands()
