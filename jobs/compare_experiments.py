"""Compare the runs of one or more experiments: a table with one row per run, chosen params and
metrics as columns, and a rank — written to Delta or Parquet, with the top runs printed.

    spark-submit jobs/compare_experiments.py --root /data/lake --experiment ctr-model \\
        --metric auc --metric logloss --param lr --rank-by auc --output /data/ctr_comparison

Reads the tracking views (sparkml_ops.sql.register_views), so it runs wherever Spark runs.
Without --param every param key of the chosen runs becomes a column.
"""

from __future__ import annotations

import argparse
import re
import sys

from sparkml_ops.errors import BadInput, SparkmlOpsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compare_experiments.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.add_argument("--experiment", action="append", required=True, help="experiment name (repeatable)")
    p.add_argument("--metric", action="append", required=True, help="metric key to compare (repeatable)")
    p.add_argument("--param", action="append", help="param key to show (repeatable; default: all)")
    p.add_argument("--rank-by", help="metric to rank by (default: the first --metric)")
    p.add_argument("--ascending", action="store_true", help="lower is better (e.g. a loss)")
    p.add_argument("--output", required=True, help="where to write the comparison table")
    p.add_argument("--format", choices=("delta", "parquet"), default="delta")
    p.add_argument("--as-of", help="compare the runs as of a runs-table version or a timestamp")
    p.add_argument("--include-deleted", action="store_true", help="also compare deleted runs")
    p.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    return p


def column_name(prefix: str, key: str) -> str:
    """A Spark- and Parquet-safe column name for a param or metric key."""
    return prefix + re.sub(r"[^0-9A-Za-z_]", "_", key)


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def comparison_sql(spark, experiments: list[str], metrics: list[str], params: list[str] | None, rank_by: str,
                   ascending: bool, include_deleted: bool) -> str:
    where = f"experiment_name IN ({', '.join(_literal(e) for e in experiments)})"
    if not include_deleted:
        where += " AND lifecycle_stage = 'active'"
    if params is None:
        rows = spark.sql(f"SELECT DISTINCT explode(map_keys(params)) AS k FROM runs_wide WHERE {where}").collect()
        params = sorted(r.k for r in rows)
    chosen = [(column_name("param_", k), f"params[{_literal(k)}]") for k in params]
    chosen += [(column_name("metric_", k), f"metrics[{_literal(k)}]") for k in metrics]
    names = [n for n, _ in chosen]
    if len(set(names)) != len(names):
        raise BadInput(f"param/metric keys map to clashing column names: {names}")
    order = "ASC NULLS LAST" if ascending else "DESC NULLS LAST"
    picks = ", ".join(f"{expr} AS `{name}`" for name, expr in chosen)
    return (f"SELECT rank() OVER (ORDER BY metrics[{_literal(rank_by)}] {order}) AS `rank`, run_id, run_name, "
            f"experiment_name, status, start_time, {picks} FROM runs_wide WHERE {where}")


def write_output(df, path: str, fmt: str) -> None:
    from sparkml_ops.sql.spark import delta_configured

    if fmt == "parquet":
        df.write.mode("overwrite").parquet(path)
    elif delta_configured(df.sparkSession):
        df.write.format("delta").mode("overwrite").save(path)
    else:  # no Delta jars: the comparison is one row per run, so the driver writes it with delta-rs
        from deltalake import write_deltalake

        write_deltalake(path, df.toArrow(), mode="overwrite", schema_mode="overwrite")


def main(argv: list[str] | None = None, spark=None) -> int:
    args = build_parser().parse_args(argv)
    if args.top < 0:
        raise BadInput(f"--top {args.top} must be >= 0")
    from pyspark.sql import SparkSession

    from sparkml_ops.sql import register_views

    spark = spark or SparkSession.builder.appName("sparkml_ops-compare-experiments").getOrCreate()
    register_views(spark, args.root, as_of=args.as_of)
    known = {r.name for r in spark.sql("SELECT name FROM experiments").collect()}
    missing = [e for e in args.experiment if e not in known]
    if missing:
        raise BadInput(f"no experiment named {missing} in this root; experiments: {sorted(known)}")
    rank_by = args.rank_by or args.metric[0]
    sql = comparison_sql(spark, args.experiment, args.metric, args.param, rank_by, args.ascending,
                         args.include_deleted)
    df = spark.sql(sql).orderBy("rank", "run_id").cache()  # one row per run: computed once, used thrice
    try:
        write_output(df, args.output, args.format)
        print(f"wrote {df.count()} runs to {args.output} ({args.format}), ranked by {rank_by} "
              f"({'ascending' if args.ascending else 'descending'})")
        df.show(args.top, truncate=False)
    finally:
        df.unpersist()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SparkmlOpsError as exc:
        print(f"compare_experiments: error: {exc.message}", file=sys.stderr)
        sys.exit(2)
