"""``sparkml-ops score``: run a model over a dataset or a stream as a spark-submit job.

    sparkml-ops score --model URI --input PATH --output PATH [--format delta|parquet]
                      [--master local[2]] [--env packed|local] [--stream ...]

The command resolves the model (and, with ``--env packed``, builds or reuses its packed
env) in this process, then launches ``spark-submit`` on ``jobs/batch_score.py`` or
``jobs/stream_score.py`` and returns its exit code.
"""

from __future__ import annotations

import argparse
import shlex

from sparkml_ops.errors import BadInput
from sparkml_ops.models import jobio


def cmd_score(args: argparse.Namespace) -> int:
    import mlflow

    from sparkml_ops import config
    from sparkml_ops.models.jobs import prepare_job, run_job

    tracking_uri = config.tracking_uri(args.root)
    mlflow.set_tracking_uri(tracking_uri)
    if args.batch_size <= 0:
        raise BadInput(f"--batch-size must be a positive integer, got {args.batch_size}")
    job_args = ["--model", args.model, "--input", args.input, "--output", args.output,
                "--output-col", args.output_col, "--batch-size", str(args.batch_size)]
    if args.columns:
        job_args += ["--columns", ",".join(args.columns)]
    if args.report:
        job_args += ["--report", args.report]
    if args.stream:
        if args.format != "delta":
            raise BadInput("--stream writes a Delta table; --format parquet is for batch jobs")
        job_args += ["--reload-every", str(args.reload_every), "--trigger-seconds", str(args.trigger_seconds),
                     "--rows-per-second", str(args.rows_per_second)]
        if args.input_format not in jobio.STREAM_INPUT_FORMATS:
            raise BadInput(f"--input-format {args.input_format} cannot be streamed; "
                           f"--stream reads {', '.join(jobio.STREAM_INPUT_FORMATS)}")
        if args.input_format != "auto":
            job_args += ["--input-format", args.input_format]
        for flag, value in (("--checkpoint", args.checkpoint), ("--max-files-per-trigger", args.max_files_per_trigger),
                            ("--timeout", args.timeout)):
            if value is not None:
                job_args += [flag, str(value)]
        if args.available_now:
            job_args.append("--available-now")
    else:
        if args.input_format == "rate":
            raise BadInput("--input-format rate is a stream source; add --stream")
        for flag in ("checkpoint", "max_files_per_trigger", "timeout"):
            if getattr(args, flag) is not None:
                raise BadInput(f"--{flag.replace('_', '-')} applies to --stream only")
        if args.reload_every or args.available_now:
            raise BadInput("--reload-every and --available-now apply to --stream only")
        job_args += ["--format", args.format, "--mode", args.mode, "--input-format", args.input_format]
        if args.job_id:
            job_args += ["--job-id", args.job_id]
    job = prepare_job("stream" if args.stream else "batch", job_args, model=args.model, master=args.master,
                      env=args.env, env_cache_dir=args.env_cache, progress=not args.quiet,
                      conf=config.parse_pairs(args.conf, "--conf"), tracking_uri=tracking_uri)
    if args.dry_run:
        print(shlex.join(job.command))
        return 0
    return run_job(job)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``score`` to the ``sparkml-ops`` command."""
    p = sub.add_parser("score", help="Score a dataset or a stream with an MLflow model (spark-submit job).",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.add_argument("--model", "-m", required=True,
                   help="run id, runs:/<run>/<path>, models:/<model_id>, models:/<name>/latest or a path")
    p.add_argument("--input", "-i", required=True, help="input path (Parquet/JSON/CSV/Delta); 'rate' with --stream")
    p.add_argument("--output", "-o", required=True, help="output Delta table (or Parquet dir with --format parquet)")
    p.add_argument("--format", choices=("delta", "parquet"), default="delta", help="output format (default delta)")
    p.add_argument("--input-format", choices=sorted(set(jobio.INPUT_FORMATS) | set(jobio.STREAM_INPUT_FORMATS)),
                   default="auto", help="batch: auto|parquet|json|csv|delta; stream: auto|parquet|json|rate")
    p.add_argument("--mode", choices=("append", "overwrite"), default="append", help="batch output mode")
    p.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    p.add_argument("--env", choices=("local", "packed"), default="local",
                   help="local: this Python (warns on differences); packed: the model's own env, built once")
    p.add_argument("--env-cache", default=None, help="packed env cache (default: <root>/envs for a local root)")
    p.add_argument("--output-col", default="prediction", help="column for the predictions (default prediction)")
    p.add_argument("--columns", type=jobio.input_columns, default=(),
                   help="comma-separated input columns in the model's order (default: the signature's names; "
                        "required for a model with a tensor signature or none)")
    p.add_argument("--batch-size", type=int, default=50_000, help="rows per model call")
    p.add_argument("--conf", action="append", help="extra Spark setting key=value (repeatable)")
    p.add_argument("--job-id", default=None, help="batch: idempotency key of the Delta commit")
    p.add_argument("--report", default=None, help="write the job's result JSON to this file")
    p.add_argument("--stream", action="store_true", help="score a stream (file source or 'rate') into Delta")
    jobio.add_stream_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the spark-submit command instead of running it")
    p.add_argument("--quiet", action="store_true", help="no env build progress")
    p.set_defaults(func=cmd_score)
