"""Step 4: batch-score the data set with the chosen model on Spark; write predictions as Parquet."""

import argparse

import mlflow
from pyspark.sql import SparkSession

parser = argparse.ArgumentParser()
parser.add_argument("--model-uri", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

spark = SparkSession.builder.appName("workflow-score").getOrCreate()
frame = spark.read.parquet(args.data)
features = [c for c in frame.columns if c != "label"]
try:  # sparkml_ops' Arrow scorer (one model load per Python worker)
    from sparkml_ops.models import score

    scored = score(frame, args.model_uri, *features, output_col="prediction")
    mlflow.set_tag("scorer", "sparkml_ops")
except ImportError:  # any MLflow installation
    scored = frame.withColumn("prediction", mlflow.pyfunc.spark_udf(spark, args.model_uri)(*features))
    mlflow.set_tag("scorer", "mlflow")
scored.write.mode("overwrite").parquet(args.out)
written = spark.read.parquet(args.out)
mlflow.log_metric("scored_rows", written.count())
mlflow.log_metric("agreement", written.filter("prediction = label").count() / written.count())
spark.stop()
