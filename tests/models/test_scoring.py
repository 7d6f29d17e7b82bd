"""score(): Spark ML pipelines natively, pyfunc and ONNX models through the Arrow path."""

from __future__ import annotations

import numpy as np
import pytest

from sparkml_ops.errors import BadInput
from sparkml_ops.models import score, spark_udf
from sparkml_ops.models.onnx_convert import PROBABILITY_TOLERANCE, log_sklearn_as_onnx
from tests.models.conftest import FEATURES, features, labels

pytestmark = pytest.mark.usefixtures("allow_pickle")


def test_spark_ml_pipeline_runs_its_own_transform(spark, tracking_uri):
    import mlflow
    import mlflow.spark
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    X = features(200)
    df = spark.createDataFrame(X.assign(label=labels(X).astype(float), id=np.arange(len(X))))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"),
                                LogisticRegression(maxIter=20)]).fit(df)
    with mlflow.start_run() as run:
        info = mlflow.spark.log_model(pipeline, artifact_path="spark-model",
                                      pip_requirements=["mlflow-skinny==3.17.2", "pyspark==4.3.0"])
    out = score(df, info.model_uri, model_columns=True).orderBy("id").toPandas()
    expected = pipeline.transform(df).orderBy("id").toPandas()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), expected["prediction"].to_numpy())
    assert "probability" in out.columns  # the pipeline's own output columns
    assert set(out.model_run_id) == {run.info.run_id} and set(out.model_id) == {info.model_id}
    with pytest.raises(BadInput, match="Spark ML pipeline"):
        score(df, info.model_uri, "f0")


def test_pyfunc_model_goes_through_arrow(spark, lr_model):
    info, _, model, X = lr_model
    df = spark.createDataFrame(X.assign(id=np.arange(len(X))))
    scored = score(df, info.model_uri, output_col="label_hat", compile=False)
    plan = scored._jdf.queryExecution().executedPlan().toString()
    # batches go to the model through mapInArrow, not through a pandas UDF (ArrowEvalPython) or mapInPandas
    assert "MapInArrow" in plan and not any(n in plan for n in ("ArrowEvalPython", "MapInPandas")), plan
    out = scored.toPandas().sort_values("id")
    np.testing.assert_array_equal(out["label_hat"].to_numpy(), model.predict(X))


@pytest.mark.parametrize("kind", ["rf", "lr"])
def test_onnx_matches_sklearn_within_tolerance(spark, tracking_uri, kind):
    import mlflow
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X = features(400, seed=3)
    y = labels(X)
    model = (RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0) if kind == "rf"
             else LogisticRegression()).fit(X, y)
    with mlflow.start_run():
        info = log_sklearn_as_onnx(model, X, name=f"{kind}-onnx")
    udf = spark_udf(spark, info.model_uri)
    assert udf.result_type.simpleString() == "struct<label:bigint,probabilities:array<float>>"
    df = spark.createDataFrame(X.assign(id=np.arange(len(X))))
    got = df.withColumn("p", udf()).select("id", "p.label", "p.probabilities").toPandas().sort_values("id")
    proba = np.stack(got.probabilities.to_numpy())
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=PROBABILITY_TOLERANCE)
    expected = model.predict(X)
    unsure = np.abs(model.predict_proba(X)[:, 1] - 0.5) <= PROBABILITY_TOLERANCE
    assert np.array_equal(got.label.to_numpy()[~unsure], expected[~unsure])


def test_onnx_label_only_signature_scores_scalars(spark, tracking_uri):
    import mlflow
    from sklearn.ensemble import RandomForestClassifier

    X = features(300, seed=5)
    model = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(X, labels(X))
    with mlflow.start_run():
        info = log_sklearn_as_onnx(model, X, outputs=["label"])
    udf = spark_udf(spark, info.model_uri)
    assert udf.result_type.simpleString() == "bigint"
    got = spark.createDataFrame(X).withColumn("p", udf()).toPandas()
    agree = (got.p.to_numpy() == model.predict(X)).mean()
    assert agree >= 0.99  # float32 vs float64 only moves rows at the 0.5 threshold


def test_onnx_regressor_matches_mlflow_onnx_wrapper(spark, tracking_uri):
    import mlflow
    from sklearn.ensemble import RandomForestRegressor

    X = features(300, seed=7)
    model = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(X, X.f0 * 2 + X.f1)
    with mlflow.start_run():
        info = log_sklearn_as_onnx(model, X)
    df = spark.createDataFrame(X.assign(id=np.arange(len(X))))
    fast = df.withColumn("p", spark_udf(spark, info.model_uri)()).toPandas().sort_values("id")
    # MLflow's own onnx pyfunc wrapper (fast=False) on the same batches gives the same numbers
    slow = df.withColumn("p", spark_udf(spark, info.model_uri, fast=False)()).toPandas().sort_values("id")
    np.testing.assert_allclose(fast.p.to_numpy(), slow.p.to_numpy(), rtol=1e-6)  # float32 summation order
    np.testing.assert_allclose(fast.p.to_numpy(), model.predict(X), atol=1e-5)
