"""Spark Connect client for test_connect.py: runs in its own process (no classic session around).

    python -m tests.models.connect_client sc://127.0.0.1:PORT delta:/root models:/m-...

Prints one JSON line: predictions through the UDF and through transform, and where the
server's Python workers found the model.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    import mlflow
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from sparkml_ops.models import score, spark_udf, worker
    from tests.models.conftest import features

    remote, tracking_uri, model_uri, mode = (*argv, "false")[:4]
    compile_mode = {"true": True, "false": False, "auto": "auto"}[mode]
    mlflow.set_tracking_uri(tracking_uri)
    spark = SparkSession.builder.remote(remote).getOrCreate()
    udf = spark_udf(spark, model_uri, compile=compile_mode)
    X = features(120)
    # repartitioned: over a local relation Spark folds the projection into the scan, leaving no plan to inspect
    df = spark.createDataFrame(X.assign(id=np.arange(len(X)))).repartition(2)
    scored = df.withColumn("p", udf())
    plan = scored._explain_string() if hasattr(scored, "_explain_string") else ""
    by_udf = scored.toPandas().sort_values("id")
    by_transform = score(df, udf).toPandas().sort_values("id")
    handle = udf.handle_for(udf.input_names)

    def where(batches):
        for batch in batches:
            yield pa.RecordBatch.from_pydict({"d": [str(worker.model_dir(handle))] * batch.num_rows})

    dirs = [r.d for r in spark.range(2).mapInArrow(where, "d string").collect()]
    print(json.dumps({"session": type(spark).__module__, "udf": by_udf.p.tolist(),
                      "transform": by_transform.prediction.tolist(), "dirs": dirs, "local": handle.local_path,
                      "archive": handle.archive,
                      "compiled": udf.compiled is not None, "plan": plan}))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
