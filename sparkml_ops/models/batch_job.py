"""Batch scoring job (run by ``spark-submit``; ``jobs/batch_score.py`` is its entry script).

Reads ``--input`` (Parquet, JSON, CSV or a Delta table), scores it with ``score()`` — every
output row carries ``model_uri``, ``model_run_id`` and ``model_id`` — and writes Parquet
with Spark or a Delta table with Spark-written files committed by delta-rs, once per
``--job-id``. Prints one ``SPARKML_OPS_RESULT {json}`` line: rows, output, model ids and
what each executor Python worker runs (``sys.executable``), which shows whether the
executors used the packed env.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sparkml_ops.models import jobio


def run(spark, args: jobio.ScoreSpec) -> dict:
    from sparkml_ops.models import delta_sink
    from sparkml_ops.models.resolve import resolve_model
    from sparkml_ops.models.scoring import is_spark_model, score
    from sparkml_ops.models.udf import spark_udf

    start = time.monotonic()
    model = resolve_model(args.model)
    df = jobio.read_input(spark, args.input, args.input_format)
    scorer = model if is_spark_model(model) else spark_udf(spark, model, env=args.env, batch_size=args.batch_size,
                                                           env_cache_dir=args.env_cache)
    scored = score(df, scorer, *args.columns, output_col=args.output_col, model_columns=True)
    result: dict[str, Any] = {"model_uri": model.uri, "model_id": model.model_id, "run_id": model.run_id,
                              "output": args.output, "format": args.format,
                              "backend": jobio.probe_backend(spark, scorer)}
    if args.format == "parquet":
        scored.write.mode(args.mode).parquet(args.output)
        result["rows"] = spark.read.parquet(args.output).count() if args.mode == "overwrite" else None
    else:
        job_id = args.job_id or uuid.uuid4().hex
        commit = delta_sink.write_frame(scored, args.output, app_id=f"sparkml_ops-score-{job_id}", version=1,
                                        mode=args.mode)
        result.update(rows=commit.rows, files=commit.files, committed=commit.committed, job_id=job_id,
                      table_version=commit.table_version)
    result["workers"] = jobio.probe_workers(spark)
    result["driver_python"] = sys.executable
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return jobio.run_job("sparkml-ops score", "batch", run, argv)


if __name__ == "__main__":
    sys.exit(main())
