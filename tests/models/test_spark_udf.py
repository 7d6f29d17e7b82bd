"""spark_udf on a real local[2] session with models logged through the delta: store."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from sparkml_ops.errors import BadInput, InvalidState, ScoringError
from sparkml_ops.models import ModelEnvWarning, score, spark_udf
from tests.models import pyfunc_models
from tests.models.conftest import FEATURES, features, labels, log_sklearn

pytestmark = pytest.mark.usefixtures("allow_pickle")


def _frame(spark, X, with_id: bool = True):
    pdf = X.assign(id=np.arange(len(X))) if with_id else X
    return spark.createDataFrame(pdf)


def _collect(df, column="p"):
    return df.select("id", column).toPandas().sort_values("id")[column].tolist()


def test_udf_binds_signature_names_and_matches_sklearn(spark, lr_model):
    info, run_id, model, X = lr_model
    udfs = [spark_udf(spark, uri) for uri in (info.model_uri, run_id, f"runs:/{run_id}/model")]
    for udf in udfs:
        assert udf.model.model_id == info.model_id and udf.model.run_id == run_id
        assert udf.result_type.simpleString() == "bigint"
    by_uri, by_run_id, by_runs_uri = udfs
    # columns named in another order are matched by name, not position
    out = _frame(spark, X).select("id", by_uri().alias("a"), by_run_id().alias("b"), by_runs_uri().alias("c"),
                                  by_uri("f3", "f2", "f1", "f0").alias("d")).toPandas().sort_values("id")
    expected = model.predict(X)
    for column in "abcd":
        np.testing.assert_array_equal(out[column].to_numpy(), expected)


def test_columns_renamed_are_bound_by_position(spark, lr_model):
    info, _, model, X = lr_model
    renamed = X.rename(columns={f: f"x_{f}" for f in FEATURES})
    df = _frame(spark, renamed)
    udf = spark_udf(spark, info.model_uri)
    assert _collect(df.withColumn("p", udf(*renamed.columns))) == model.predict(X).tolist()


def test_model_is_shipped_as_archive_and_loaded_once_per_worker(spark, lr_model):
    from sparkml_ops.models import worker

    info, _, _, X = lr_model
    udf = spark_udf(spark, info.model_uri, compile=False)  # the Python path: the model travels to the workers
    df = _frame(spark, X).repartition(8)
    df.withColumn("p", udf()).write.format("noop").mode("overwrite").save()  # 8 tasks on 2 Python workers
    handle = udf.handle_for(udf.input_names)

    def where(batches):
        import json

        for batch in batches:
            info = {"dir": str(worker.model_dir(handle)), "loads": worker.load_count(handle.digest)}
            yield pa.RecordBatch.from_pydict({"info": [json.dumps(info)] * batch.num_rows})

    import json

    seen = [json.loads(r.info) for r in spark.range(0, 8, 1, 8).mapInArrow(where, "info string").collect()]
    assert all(s["dir"] != handle.local_path and s["dir"].endswith(handle.archive) for s in seen), seen
    assert all(s["loads"] <= 1 for s in seen), seen  # at most one load per worker process


def test_struct_array_and_nested_outputs(spark, tracking_uri):
    import mlflow

    with mlflow.start_run():
        info = pyfunc_models.log_pyfunc(pyfunc_models.StructModel(), pyfunc_models.struct_signature())
    X = features(50)
    udf = spark_udf(spark, info.model_uri)
    assert udf.result_type.simpleString() == (
        "struct<score:double,label:bigint,vec:array<double>,info:struct<inner:struct<x:double>,n:bigint>>")
    rows = _frame(spark, X).withColumn("p", udf()).orderBy("id").select("p").collect()
    first = rows[3].p
    s = X.f0[3] + X.f1[3]
    assert first.score == pytest.approx(s) and first.label == int(s > 1)
    assert first.vec == pytest.approx([X.f0[3], X.f1[3]])
    assert first.info.inner.x == pytest.approx(s)
    # the same model with one field picked by an explicit result type
    only_score = spark_udf(spark, info.model_uri, result_type="struct<score: double, label: bigint>")
    got = _frame(spark, X).withColumn("p", only_score()).orderBy("id").select("p.score").collect()
    assert [r.score for r in got] == pytest.approx((X.f0 + X.f1).tolist())


def test_tensor_output_becomes_array(spark, tracking_uri):
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X = features()
    model = LogisticRegression().fit(X, labels(X))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="proba", pyfunc_predict_fn="predict_proba",
                                        signature=infer_signature(X, model.predict_proba(X)),
                                        serialization_format="cloudpickle",
                                        pip_requirements=["mlflow-skinny==3.17.2", "scikit-learn==1.9.1"])
    udf = spark_udf(spark, info.model_uri)
    assert udf.result_type.simpleString() == "array<double>"
    got = np.array(_collect(_frame(spark, X).withColumn("p", udf())))
    np.testing.assert_allclose(got, model.predict_proba(X), rtol=1e-12)


def test_missing_and_wrong_columns_fail_on_the_driver(spark, lr_model):
    from pyspark.sql import functions as F

    info, _, _, X = lr_model
    udf = spark_udf(spark, info.model_uri)
    with pytest.raises(BadInput, match=r"missing \['f3'\]"):
        udf("f0", "f1", "f2")
    with pytest.raises(BadInput, match=r"not model inputs \['zz'\]"):
        udf("f0", "f1", "f2", "zz")
    with pytest.raises(BadInput, match=r"expects 4 inputs"):
        udf("a", "b")
    df = _frame(spark, X).drop("f3")
    with pytest.raises(BadInput, match=r"no column\(s\) \['f3'\]"):
        score(df, udf)
    wrong = _frame(spark, X).withColumn("f1", F.lit("x"))
    with pytest.raises(BadInput, match=r"column 'f1' of the DataFrame is string, but model .* needs double"):
        score(wrong, udf)


def test_executor_error_names_model_and_columns(spark, tracking_uri):
    import mlflow

    with mlflow.start_run():
        info = pyfunc_models.log_pyfunc(pyfunc_models.FailingModel(), pyfunc_models.scalar_signature())
    udf = spark_udf(spark, info.model_uri)
    with pytest.raises(Exception) as caught:
        _frame(spark, features(20)).withColumn("p", udf()).collect()
    text = str(caught.value)
    assert "ScoringError" in text and info.model_uri in text and "this model always fails" in text
    assert "f0: double, f1: double, f2: double, f3: double" in text
    error = ScoringError(f"model {info.model_uri} failed")
    assert pickle.loads(pickle.dumps(error)).message == error.message  # travels between processes


def test_score_with_a_udf_matches_it_and_carries_model_ids(spark, lr_model):
    from pyspark.sql import functions as F

    info, run_id, model, X = lr_model
    udf = spark_udf(spark, info.model_uri, batch_size=64)
    df = _frame(spark, X).withColumn("f0", F.col("f0").cast("float"))
    out = score(df, udf, model_columns=True).orderBy("id").toPandas()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X.astype({"f0": "float32"})))
    assert set(out.model_id) == {info.model_id} and set(out.model_run_id) == {run_id}
    assert set(out.model_uri) == {info.model_uri}
    assert list(out.columns[:5]) == [*FEATURES, "id"]
    with pytest.raises(BadInput, match="already has column"):
        score(_frame(spark, X).withColumnRenamed("id", "prediction"), udf)


def test_udf_scores_a_stream(spark, lr_model, tmp_path):
    info, _, model, X = lr_model
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        X.iloc[i * 100:(i + 1) * 100].assign(id=np.arange(i * 100, (i + 1) * 100)).to_parquet(source / f"{i}.parquet")
    schema = spark.read.parquet(str(source)).schema
    udf = spark_udf(spark, info.model_uri)
    stream = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(source))
    query = (stream.withColumn("p", udf()).writeStream.format("memory").queryName("scored_stream")
             .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(availableNow=True).start())
    query.awaitTermination(120)
    got = spark.sql("select id, p from scored_stream order by id").toPandas()
    assert got.id.tolist() == list(range(300))
    np.testing.assert_array_equal(got.p.to_numpy(), model.predict(X))


def test_env_local_warns_with_exact_differences(spark, tracking_uri):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    X = features()
    with mlflow.start_run():
        info = log_sklearn(LogisticRegression().fit(X, labels(X)), X,
                           requirements=["mlflow-skinny==3.17.2", "scikit-learn==1.0.2", "nonexistent-pkg-xyz==1.0"])
    with pytest.warns(ModelEnvWarning) as record:
        spark_udf(spark, info.model_uri, env="local")
    text = str(record[0].message)
    assert "scikit-learn: required ==1.0.2, installed 1.9.1" in text
    assert "nonexistent-pkg-xyz: required ==1.0, not installed" in text
    with pytest.raises(InvalidState, match="packed env"):
        spark_udf(spark, info.model_uri, env="packed")


def test_bad_arguments(spark, lr_model):
    info, _, _, _ = lr_model
    with pytest.raises(BadInput, match="batch_size"):
        spark_udf(spark, info.model_uri, batch_size=0)
    with pytest.raises(BadInput, match="env 'conda'"):
        spark_udf(spark, info.model_uri, env="conda")
    with pytest.raises(BadInput, match="result_type"):
        spark_udf(spark, info.model_uri, result_type="struct<oops")
