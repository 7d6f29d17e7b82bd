"""What both scoring jobs share: reading inputs, asking the executors who they are, reporting."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sparkml_ops.errors import BadInput

RESULT_PREFIX = "SPARKML_OPS_RESULT "
INPUT_FORMATS = ("auto", "parquet", "json", "csv", "delta")
STREAM_INPUT_FORMATS = ("auto", "parquet", "json", "rate")  # file sources Spark can stream, and demos


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="run id, runs:/..., models:/<id>, models:/<name>/latest or path")
    parser.add_argument("--output", required=True, help="output path (Delta table or Parquet directory)")
    parser.add_argument("--output-col", default="prediction", help="column for the predictions")
    parser.add_argument("--columns", type=input_columns, default=(),
                        help="comma-separated input columns in the model's order (default: the signature's names; "
                             "required for a tensor signature or none)")
    parser.add_argument("--batch-size", type=int, default=50_000, help="rows per model call")
    parser.add_argument("--env", choices=("local", "packed"), default="local")
    parser.add_argument("--env-cache", default=None, help="packed env cache directory")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (e.g. delta:/path/to/root)")
    parser.add_argument("--report", default=None, help="also write the result JSON to this file")


def add_stream_args(parser: argparse.ArgumentParser) -> None:
    """The streaming options, shared by ``sparkml-ops score --stream`` and the stream job it submits."""
    parser.add_argument("--checkpoint", default=None, help="stream checkpoint (default <output>/_checkpoint)")
    parser.add_argument("--reload-every", type=int, default=0,
                        help="stream: re-resolve the model every N batches (0: never)")
    parser.add_argument("--trigger-seconds", type=float, default=1.0, help="stream: micro-batch interval")
    parser.add_argument("--max-files-per-trigger", type=int, default=None, help="stream: files per micro-batch")
    parser.add_argument("--rows-per-second", type=int, default=100, help="stream: rate source speed")
    parser.add_argument("--available-now", action="store_true", help="stream: process what is there, then stop")
    parser.add_argument("--timeout", type=float, default=None, help="stream: stop after this many seconds")


def input_columns(text: str) -> tuple[str, ...]:
    """``a,b,c`` → ``("a", "b", "c")``; an empty name is an error, not a silent skip."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"--columns {text!r} has an empty column name")
    return names


def detect_format(path: str, declared: str) -> str:
    if declared not in INPUT_FORMATS:
        raise BadInput(f"input format {declared!r} must be one of {list(INPUT_FORMATS)}")
    if declared != "auto":
        return declared
    local = Path(path)
    if (local / "_delta_log").is_dir():
        return "delta"
    suffixes = {p.suffix for p in local.rglob("*") if p.is_file()} if local.is_dir() else {local.suffix}
    for fmt, suffix in (("json", ".json"), ("csv", ".csv")):
        if suffix in suffixes and ".parquet" not in suffixes:
            return fmt
    return "parquet"


def read_input(spark, path: str, fmt: str = "auto"):
    """A batch DataFrame over ``path``; Delta tables are read through delta-rs's file list (no Delta jars)."""
    fmt = detect_format(path, fmt)
    if fmt == "delta":
        from deltalake import DeltaTable

        files = DeltaTable(path).file_uris()
        if not files:
            raise BadInput(f"Delta table {path} has no data files")
        return spark.read.parquet(*files)
    reader = spark.read
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader.format(fmt).load(path)


def probe_workers(spark, partitions: int = 2) -> list[dict[str, Any]]:
    """Each Python worker that runs a probe task reports its interpreter and package locations."""
    import pyarrow as pa

    from sparkml_ops.models import worker

    def run(batches):
        info = json.dumps(worker.probe())
        for batch in batches:
            yield pa.RecordBatch.from_pydict({"info": [info] * batch.num_rows})

    rows = spark.range(0, partitions, 1, partitions).mapInArrow(run, "info string").collect()
    return [json.loads(r.info) for r in rows]


def report(result: dict[str, Any], path: str | None) -> None:
    text = json.dumps(result, default=str, sort_keys=True)
    print(RESULT_PREFIX + text, flush=True)
    if path:
        Path(path).write_text(text)


def set_tracking(uri: str | None) -> None:
    if uri:
        import mlflow

        mlflow.set_tracking_uri(uri)


def log(message: str) -> None:
    print(f"[sparkml-ops] {message}", file=sys.stderr, flush=True)


def run_job(app_name: str, parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
            job: Callable[[Any, argparse.Namespace], dict[str, Any]], argv: Sequence[str] | None = None) -> int:
    """The spark-submit entry shared by the batch and stream jobs: one session, a result report, a clean stop."""
    from pyspark.sql import SparkSession

    args = parse_args(argv)
    set_tracking(args.tracking_uri)
    spark = SparkSession.builder.appName(app_name).getOrCreate()
    try:
        report(job(spark, args), args.report)
    finally:
        spark.stop()
    return 0
