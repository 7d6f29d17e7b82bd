"""spark_udf with compiled models: native columns (no Python node in the plan), fallback reasons,
whole-stage codegen, streaming, and the expression used from plain Spark SQL."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest

from tests.models.conftest import FEATURES, SKLEARN_REQS, features, labels

pytestmark = pytest.mark.usefixtures("allow_pickle")
PYTHON_NODES = ("ArrowEvalPython", "BatchEvalPython", "MapInArrow", "MapInPandas", "PythonUDF")


def _save(model, X, path, method="predict"):
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, getattr(model, method)(X)),
                              serialization_format="cloudpickle", pyfunc_predict_fn=method,
                                          pip_requirements=SKLEARN_REQS)
    return str(path)


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


@pytest.fixture(scope="module")
def rf_path(tmp_path_factory):
    from sklearn.ensemble import RandomForestClassifier

    X = features(400)
    model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(X, labels(X))
    return _save(model, X, tmp_path_factory.mktemp("rf") / "model"), model


def test_compiled_plan_has_no_python_node_and_python_path_does(spark, lr_model):
    from sparkml_ops.models import score, spark_udf

    info, _, model, X = lr_model
    df = spark.createDataFrame(X)
    compiled = spark_udf(spark, info.model_uri)
    assert compiled.compiled is not None and compiled.compile_reason is None
    scored = df.withColumn("p", compiled())
    plan = _plan(scored)
    assert not [n for n in PYTHON_NODES if n in plan], plan
    got = scored.toPandas()
    assert got.p.tolist() == model.predict(got[FEATURES]).tolist()
    transformed = score(df, compiled)
    assert not [n for n in PYTHON_NODES if n in _plan(transformed)]
    python = spark_udf(spark, info.model_uri, compile=False)
    assert python.compiled is None and "ArrowEvalPython" in _plan(df.withColumn("p", python()))


def test_fallback_logs_why_and_compile_true_raises(spark, tracking_uri, allow_pickle, caplog, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    from sparkml_ops.models import spark_udf
    from sparkml_ops.models.compile import NotCompilable

    X = features(200)
    path = _save(KNeighborsClassifier(3).fit(X, labels(X)), X, tmp_path / "knn")
    with caplog.at_level(logging.WARNING, logger="sparkml_ops.models.udf"):
        udf = spark_udf(spark, path)
    assert udf.compiled is None and "KNeighborsClassifier does not compile" in udf.compile_reason
    lines = [r.getMessage() for r in caplog.records if "Python UDF" in r.getMessage()]
    assert len(lines) == 1 and "KNeighborsClassifier" in lines[0]
    with pytest.raises(NotCompilable, match="KNeighborsClassifier does not compile"):
        spark_udf(spark, path, compile=True)
    with pytest.raises(ValueError, match="compile must be 'auto', True or False"):
        spark_udf(spark, path, compile="yes")
    df = spark.createDataFrame(X)
    assert "ArrowEvalPython" in _plan(df.withColumn("p", udf()))


def test_auto_keeps_tree_ensembles_in_python_and_says_why(spark, rf_path, caplog):
    """Compiled ensembles scored slower than the Python path (bench_spark_udf): "auto" does not pick them."""
    from sparkml_ops.models import spark_udf

    path, model = rf_path
    with caplog.at_level(logging.WARNING, logger="sparkml_ops.models"):
        udf = spark_udf(spark, path)
    assert udf.compiled is None and "tree ensembles (30 trees) score faster in Python" in udf.compile_reason
    assert any("tree ensembles" in r.getMessage() for r in caplog.records)
    X = features(300, seed=9)
    scored = spark.createDataFrame(X).withColumn("p", udf())
    assert "ArrowEvalPython" in _plan(scored)
    assert scored.toPandas().p.tolist() == model.predict(X).tolist()
    assert spark_udf(spark, path, compile=True).compiled.tree_count == 30


def test_large_forest_stays_in_whole_stage_codegen(spark, rf_path):
    """The generated code compiles and every method stays under Spark's huge-method limit,
    so the stage is not silently executed without whole-stage codegen (as one SQL expression
    of the 30 trees is: its generated method passes 64 KB)."""
    from sparkml_ops.models import spark_udf

    path, model = rf_path
    X = features(2000, seed=3)
    df = spark.createDataFrame(X).repartition(2)  # not a local relation: Spark would fold the projection into it
    udf = spark_udf(spark, path, compile=True)
    assert udf.compiled.tree_count == 30
    scored = df.withColumn("p", udf())
    got = scored.toPandas()  # run it, so adaptive execution has settled its final plan
    jvm = spark.sparkContext._jvm
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # AQE inserts codegen stages only when it runs
    try:
        plan = scored._jdf.queryExecution().executedPlan()
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    stages = []

    def visit(node):
        kind = node.getClass().getSimpleName()
        if kind == "WholeStageCodegenExec":
            stages.append(node)
        if kind == "AdaptiveSparkPlanExec":
            return visit(node.executedPlan())
        if kind.endswith("QueryStageExec"):
            return visit(node.plan())
        children = node.children()
        for i in range(children.size()):
            visit(children.apply(i))

    visit(plan)
    assert stages, plan.toString()
    final = plan.toString().split("== Initial Plan ==")[0]  # AQE shows the plan before codegen stages too
    project = [line.split("Project [")[0] for line in final.splitlines() if "Project [" in line]
    assert project and all(re.search(r"\*\(\d+\) $", head) for head in project), final[:3000]
    limit = int(spark.conf.get("spark.sql.codegen.hugeMethodLimit"))
    generator = jvm.org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator  # static forwarders
    for stage in stages:
        code = stage.doCodeGen()._2()
        stats = generator.compile(code)._2()
        assert stats.maxMethodCodeSize() <= limit, (stats.maxMethodCodeSize(), limit)
    assert got.p.tolist() == model.predict(got[FEATURES]).tolist()


def test_compile_time_of_a_forest(rf_path):
    from sparkml_ops.models.compile import compile_model

    path, _ = rf_path
    start = time.perf_counter()
    compiled = compile_model(path)
    assert time.perf_counter() - start < 5
    assert compiled.sql().count("CASE WHEN") > 30 * 2


def test_to_sql_runs_in_plain_spark_sql(spark, lr_model):
    from sparkml_ops.models import to_sql

    info, _, model, X = lr_model
    spark.createDataFrame(X.assign(id=np.arange(len(X)))).createOrReplaceTempView("compiled_rows")
    expr = to_sql(info.model_uri)
    rows = spark.sql(f"SELECT id, {expr} AS prediction FROM compiled_rows ORDER BY id").collect()
    assert [r.prediction for r in rows] == model.predict(X).tolist()
    renamed = to_sql(info.model_uri, columns=[f"x{i}" for i in range(len(FEATURES))])
    assert "`x0`" in renamed and "`f0`" not in renamed


def test_compiled_model_scores_a_stream(spark, lr_model, tmp_path):
    from sparkml_ops.models import spark_udf

    info, _, model, X = lr_model
    src = tmp_path / "in"
    src.mkdir()
    X.to_parquet(src / "part-0.parquet")
    udf = spark_udf(spark, info.model_uri, compile=True)
    stream = spark.readStream.schema(spark.read.parquet(str(src)).schema).parquet(str(src))
    scored = stream.withColumn("p", udf())
    query = scored.writeStream.format("memory").queryName("compiled_stream").trigger(availableNow=True).start()
    query.awaitTermination(300)
    plan = query._jsq.explainInternal(False)
    assert not [n for n in PYTHON_NODES if n in plan], plan
    got = spark.sql("SELECT * FROM compiled_stream").toPandas()
    assert len(got) == len(X)
    np.testing.assert_array_equal(got.sort_values("f0").p.to_numpy(),
                                  model.predict(got.sort_values("f0")[FEATURES]))


def test_models_compile_command_prints_the_expression_or_why_not(rf_path, tmp_path):
    from click.testing import CliRunner
    from sklearn.neighbors import KNeighborsClassifier

    from sparkml_ops.cli import main
    from sparkml_ops.models import to_sql

    path, _ = rf_path
    runner = CliRunner()
    result = runner.invoke(main, ["models", "compile", path, "--root", str(tmp_path / "lake")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == to_sql(path)
    X = features(100)
    knn = _save(KNeighborsClassifier(3).fit(X, labels(X)), X, tmp_path / "knn")
    result = runner.invoke(main, ["models", "compile", knn, "--root", str(tmp_path / "lake")])
    assert result.exit_code == 1 and "KNeighborsClassifier does not compile" in result.stderr
