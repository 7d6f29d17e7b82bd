"""Spark SQL views: same shapes as the embedded engine, and the same answers for the same SQL."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from sparkml_ops import sql
from sparkml_ops.sql.spark import delta_configured, spark_path
from tests.sql.conftest import as_dict, search_all

SAME_SQL = [
    # the example: map access, ORDER BY ... DESC (NULLs last) and LIMIT
    "SELECT run_id, params['lr'] AS lr, metrics['auc'] AS auc FROM runs_wide "
    "WHERE experiment_name = 'ctr-model' ORDER BY auc DESC LIMIT 10",
    # casts, a missing map key (NULL), ascending order with NULLs first
    "SELECT run_name, CAST(params['lr'] AS DOUBLE) * 2 AS lr2, params['missing'] AS missing, "
    "metrics['auc'] AS auc FROM runs_wide ORDER BY auc, run_name",
    "SELECT key, count(*) AS n, max(value) AS mx, avg(step) AS avg_step FROM metrics WHERE key <> 'weird' "
    "GROUP BY key ORDER BY key",
    # window functions
    "SELECT run_id, step, value, lag(value) OVER (PARTITION BY run_id ORDER BY step) AS prev, "
    "sum(value) OVER (PARTITION BY run_id ORDER BY step) AS running, "
    "row_number() OVER (ORDER BY value DESC, run_id, step) AS rn FROM metrics WHERE key = 'loss' "
    "ORDER BY run_id, step",
    # CTE, joins, USING, division and modulo
    "WITH best AS (SELECT run_id, max(value) AS best FROM metrics WHERE key = 'auc' GROUP BY run_id) "
    "SELECT r.run_name, e.name AS experiment, b.best, 1 / 2 AS half, 7 % 3 AS mod FROM best b "
    "JOIN runs r USING (run_id) LEFT JOIN experiments e ON e.experiment_id = r.experiment_id ORDER BY b.best",
    # GROUP BY ordinal, coalesce, CASE, tags map
    "SELECT coalesce(params['opt'], 'none') AS opt, CASE WHEN metrics['auc'] > 0.7 THEN 'good' ELSE 'meh' END "
    "AS grade, count(*) AS n, max(tags['team']) AS team FROM runs_wide GROUP BY 1, 2 ORDER BY 1, 2",
    # Spark's collection functions
    "SELECT run_id, array_sort(collect_set(key)) AS keys, cardinality(collect_list(key)) AS n FROM metrics "
    "GROUP BY run_id ORDER BY run_id",
    "SELECT upper(run_name) AS u, length(run_id) AS l, substr(run_name, 1, 1) AS s, end_time - start_time AS d, "
    "status FROM runs ORDER BY u",
    # NaN sorts above every number in both engines
    "SELECT run_id, value FROM latest_metrics WHERE key = 'weird' ORDER BY value DESC",
    # lineage views
    "SELECT r.run_name, i.name, i.context, i.source_type, m.name AS model, o.step, t.key AS exp_tag "
    "FROM runs r JOIN inputs i ON i.run_id = r.run_id JOIN outputs o ON o.run_id = r.run_id "
    "JOIN logged_models m ON m.model_id = o.model_id JOIN experiment_tags t ON t.experiment_id = r.experiment_id",
    # the model registry: versions with their aliases, tags and the model's tags
    "SELECT v.name, v.version, v.current_stage, v.source, a.alias, t.value AS i, rt.value AS team, "
    "v.model_id IS NOT NULL AS logged FROM model_versions v LEFT JOIN model_aliases a "
    "ON a.name = v.name AND a.version = v.version LEFT JOIN model_version_tags t ON t.name = v.name "
    "AND t.version = v.version AND t.key = 'i' JOIN registered_models r ON r.name = v.name "
    "LEFT JOIN registered_model_tags rt ON rt.name = r.name ORDER BY v.version",
]


def normal(value):
    """Compare engines by value: maps as dicts, floats rounded, NaN as a marker, Decimals as floats."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else round(value, 9)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return {k: normal(v) for k, v in value}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    return value


@pytest.fixture(scope="module")
def views(spark, filled):
    root, _, _ = filled
    versions = sql.register_views(spark, root)
    return root, versions


def test_spark_views_match_embedded_views(spark, views):
    root, versions = views
    assert versions == sql.snapshot_versions(root)
    counts = " UNION ALL ".join(f"SELECT '{v}' AS view, count(*) AS n FROM {v}" for v in sql.VIEW_NAMES)
    from_spark = {r.view: r.n for r in spark.sql(counts).collect()}
    from_duckdb = {r["view"]: r["n"] for r in sql.query(counts, root).to_pylist()}
    assert from_spark == from_duckdb
    assert from_spark["runs_wide"] == 6 and from_spark["metrics"] == 15
    for view in sql.VIEW_NAMES:
        assert spark.table(view).columns == sql.query(f"SELECT * FROM {view} LIMIT 0", root).column_names, view


@pytest.mark.parametrize("text", SAME_SQL)
def test_same_sql_same_answer(spark, views, text):
    root, _ = views
    from_spark = [normal(list(row.asDict(recursive=True).values())) for row in spark.sql(text).collect()]
    from_duckdb = [normal(list(row.values())) for row in sql.query(text, root).to_pylist()]
    assert from_spark, text  # every query returns something to compare
    assert from_spark == from_duckdb


def test_spark_runs_wide_agrees_with_search_runs(spark, views, filled):
    _, uri, _ = filled
    wide = {r.run_id: r.asDict(recursive=True) for r in spark.table("runs_wide").collect()}
    for run in search_all(uri):
        row = wide[run.info.run_id]
        assert (as_dict(row["params"]) or {}) == run.data.params
        assert (as_dict(row["tags"]) or {}) == run.data.tags
        assert normal(as_dict(row["metrics"]) or {}) == normal(run.data.metrics)
        assert row["status"] == run.info.status


def test_empty_tables_and_cache(spark, tracking_uri, root):
    import mlflow

    mlflow.MlflowClient().search_experiments()  # a root with only the default experiment
    from tests.sql.conftest import flush

    flush(tracking_uri)
    sql.register_views(spark, str(root), cache=True)
    assert spark.catalog.isCached("runs_wide")
    assert spark.table("runs_wide").count() == 0
    assert spark.table("inputs").columns[:3] == ["run_id", "kind", "name"]
    sql.register_views(spark, str(root))  # re-registering drops the stale cache
    assert not spark.catalog.isCached("runs_wide")


def test_session_without_delta_jars_reads_file_lists(spark):
    assert not delta_configured(spark)
    assert spark_path("/tmp/a b/x.parquet") == "file:///tmp/a%20b/x.parquet"
    assert spark_path("s3://bucket/t/x.parquet") == "s3a://bucket/t/x.parquet"
