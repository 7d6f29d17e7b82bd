"""The REST server, the Spark UDF (Arrow path and compiled) and the batch job: one core, the same answers."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from tests.models.serving.conftest import FEATURES, flush_store, start_server, training_frame


def test_rest_server_and_udf_answer_alike(spark, lr_served):
    from sparkml_ops.models import spark_udf

    server, info, pyfunc = lr_served
    rows, _ = training_frame(rows=60, seed=7)
    reply = httpx.post(server.url + "/invocations", timeout=60,
                       json={"dataframe_split": {"columns": FEATURES, "data": rows.to_numpy().tolist()}})
    assert reply.status_code == 200, reply.text
    served = reply.json()["predictions"]
    df = spark.createDataFrame(rows.reset_index(names="id")).repartition(2)
    arrow = spark_udf(spark, info.model_uri, compile=False)
    compiled = spark_udf(spark, info.model_uri, compile=True)
    got = df.select("id", arrow().alias("arrow"), compiled().alias("compiled")).orderBy("id").toPandas()
    assert got.arrow.tolist() == served
    assert got.compiled.tolist() == served
    assert served == pyfunc.predict(rows).tolist()


@pytest.fixture(scope="module")
def knn_served(module_root, tmp_path_factory):
    """A model with a fast path that does not compile (k-nearest neighbours), served over REST."""
    import mlflow
    import mlflow.sklearn
    from sklearn.neighbors import KNeighborsClassifier

    frame, target = training_frame(rows=200, seed=3)
    model = KNeighborsClassifier(n_neighbors=5).fit(frame, target)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="knn", input_example=frame.head(2),
                                        serialization_format="cloudpickle",
                                        pip_requirements=mlflow.sklearn.get_default_pip_requirements())
    flush_store()
    server = start_server(info.model_uri, module_root, tmp_path_factory.mktemp("logs"))
    yield server, info, model
    assert server.stop() == 0, server.output()


def test_rest_udf_and_batch_job_take_the_same_predictor(spark, knn_served, tmp_path, monkeypatch):
    """One model, three ways in: each loads it through the core's one policy and takes the same backend."""
    from sparkml_ops.models import batch_job, score, spark_udf
    from sparkml_ops.models.jobio import ScoreSpec, probe_backend

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    server, info, model = knn_served
    meta = httpx.get(server.url + "/metadata", timeout=30).json()
    assert (meta["predictor"], meta["fast_path"], meta["fast_path_reason"]) == ("sklearn", True, None)
    rows, _ = training_frame(rows=40, seed=11)
    udf = spark_udf(spark, info.model_uri)  # compile="auto": KNN does not compile, the Python path is taken
    assert udf.compiled is None and probe_backend(spark, udf) == "sklearn"
    source = tmp_path / "in.parquet"
    rows.reset_index(names="id").to_parquet(source)
    result = batch_job.run(spark, ScoreSpec(model=info.model_uri, input=str(source), output=str(tmp_path / "out"),
                                            format="parquet"))
    assert result["backend"] == "sklearn"
    reply = httpx.post(server.url + "/invocations", timeout=60,
                       json={"dataframe_split": {"columns": FEATURES, "data": rows.to_numpy().tolist()}})
    assert reply.status_code == 200, reply.text
    by_udf = score(spark.createDataFrame(rows.reset_index(names="id")), udf).orderBy("id").toPandas()
    by_job = pd.read_parquet(tmp_path / "out").sort_values("id")
    expected = model.predict(rows).tolist()
    assert reply.json()["predictions"] == by_udf.prediction.tolist() == by_job.prediction.tolist() == expected
