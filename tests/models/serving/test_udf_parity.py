"""The REST server and the Spark UDF (Arrow path and compiled) give identical answers for the same rows."""

from __future__ import annotations

import httpx

from tests.models.serving.conftest import FEATURES, training_frame


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
