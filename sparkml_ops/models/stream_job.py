"""Streaming scoring job (run by ``spark-submit``; ``jobs/stream_score.py`` is its entry script).

Reads a file source (a Parquet or JSON directory, new files picked up as they land) or
Spark's ``rate`` source (demo rows with synthetic numeric inputs named after the model's
signature), scores each micro-batch and appends it to a Delta table with
:mod:`delta_sink`: the commit carries the app transaction ``(sparkml_ops-stream-<query id>,
<batch id>)``, and Spark's checkpoint replays an unfinished batch with the same id after a
crash, so every input row lands exactly once. ``--reload-every N`` re-resolves the model URI
at the first micro-batch after N seconds (``models:/<name>@<alias>`` then follows the alias,
``models:/<name>/latest`` picks up a new version); each row names the model that scored it,
its registered version (``model_version``) and the batch it came in.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence

from sparkml_ops.errors import BadInput, ScoringError
from sparkml_ops.models import jobio

BATCH_COLUMN = "stream_batch_id"
VERSION_COLUMN = "model_version"  # the registered version that scored the row (null: not from the registry)


class ModelTracker:
    """The model currently scoring, re-resolved when ``reload_every`` seconds have passed."""

    def __init__(self, spark, uri: str, *, reload_every: int, output_col: str, udf_options: dict) -> None:
        self.spark, self.uri, self.reload_every = spark, uri, reload_every
        self.output_col, self.udf_options = output_col, udf_options
        self.udf = None
        self.version: int | None = None  # registered version of the current model
        self.resolved_at = 0.0
        self.models_seen: list[str] = []

    def current(self):
        from sparkml_ops.models.resolve import resolve_model
        from sparkml_ops.models.udf import spark_udf

        due = self.udf is None or (self.reload_every and time.monotonic() - self.resolved_at >= self.reload_every)
        if due:
            resolved = resolve_model(self.uri)
            self.resolved_at = time.monotonic()
            if self.udf is None or (resolved.digest, resolved.registered_version) != (self.udf.model.digest,
                                                                                      self.version):
                if self.udf is not None:
                    jobio.log(f"model changed: {self.udf.model.label} (version {self.version}) -> {resolved.label}")
                self.udf = spark_udf(self.spark, resolved, **self.udf_options)
                self.version = resolved.registered_version
                self.models_seen.append(resolved.model_id or resolved.digest)
        return self.udf


def _source(spark, args: jobio.ScoreSpec, tracker: ModelTracker):
    from pyspark.sql import functions as F

    fmt = args.input_format
    if args.input == "rate" or fmt == "rate":
        names = tracker.current().input_names
        if not names:
            raise BadInput("the rate source needs a model whose signature names its inputs")
        stream = spark.readStream.format("rate").option("rowsPerSecond", args.rows_per_second).load()
        return stream.select("timestamp", "value", *[
            ((F.col("value") * (7919 * (i + 1)) % 1000) / 1000.0).alias(n) for i, n in enumerate(names)])
    if fmt == "auto":
        fmt = jobio.detect_format(args.input, "auto")
    if fmt not in ("parquet", "json"):
        raise BadInput(f"stream input format {fmt!r} must be parquet, json or rate")
    schema = spark.read.format(fmt).load(args.input).schema  # file streams need a schema up front
    reader = spark.readStream.schema(schema).format(fmt)
    if args.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", args.max_files_per_trigger)
    return reader.load(args.input)


def run(spark, args: jobio.ScoreSpec) -> dict:
    from pyspark.sql import functions as F

    from sparkml_ops.models import delta_sink
    from sparkml_ops.models.scoring import score

    output = os.path.abspath(args.output)
    checkpoint = args.checkpoint or os.path.join(output, "_checkpoint")
    tracker = ModelTracker(spark, args.model, reload_every=args.reload_every, output_col=args.output_col,
                           udf_options={"env": args.env, "batch_size": args.batch_size,
                                        "env_cache_dir": args.env_cache})
    stream = _source(spark, args, tracker)
    started = threading.Event()
    box: dict[str, str] = {}
    stats = {"batches": 0, "skipped": 0, "rows": 0}

    def process(batch_df, batch_id: int) -> None:
        started.wait()
        app_id = f"sparkml_ops-stream-{box['query_id']}"
        if delta_sink.is_committed(output, app_id, batch_id):
            stats["skipped"] += 1
            jobio.log(f"batch {batch_id} already committed to {output}; skipping")
            return
        udf = tracker.current()
        scored = score(batch_df, udf, *args.columns, output_col=args.output_col, model_columns=True)
        scored = scored.withColumn(VERSION_COLUMN, F.lit(tracker.version).cast("long"))
        scored = scored.withColumn(BATCH_COLUMN, F.lit(batch_id).cast("long"))
        commit = delta_sink.write_frame(scored, output, app_id=app_id, version=batch_id)
        stats["batches"] += 1
        stats["rows"] += commit.rows
        jobio.log(f"batch {batch_id}: {commit.rows} rows by {udf.model.label} -> table version {commit.table_version}")

    writer = stream.writeStream.foreachBatch(process).option("checkpointLocation", checkpoint)
    writer = writer.trigger(availableNow=True) if args.available_now else \
        writer.trigger(processingTime=f"{max(args.trigger_seconds, 0.1)} seconds")
    query = writer.start()
    box["query_id"] = str(query.id)
    started.set()
    jobio.log(f"stream {query.id} started: {args.input} -> {output} (checkpoint {checkpoint})")
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while query.isActive:
        if deadline is not None and time.monotonic() >= deadline:
            query.stop()
            break
        query.awaitTermination(0.5)
    if query.exception() is not None:
        raise ScoringError(f"stream {query.id} failed: {query.exception()}")
    return {"query_id": box["query_id"], "output": output, "checkpoint": checkpoint, "models": tracker.models_seen,
            **stats}


def main(argv: Sequence[str] | None = None) -> int:
    return jobio.run_job("sparkml-ops score --stream", "stream", run, argv)


if __name__ == "__main__":
    sys.exit(main())
