"""Step 1: make a labelled data set with Spark and write it as Parquet."""

import argparse

import mlflow
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

FEATURES = [f"f{i}" for i in range(5)]
WEIGHTS = [1.5, -2.0, 0.5, 0.0, 1.0]

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

spark = SparkSession.builder.appName("workflow-load").getOrCreate()
frame = spark.range(args.rows).select(*[F.randn(seed=i).alias(name) for i, name in enumerate(FEATURES)])
score = sum(F.col(name) * w for name, w in zip(FEATURES, WEIGHTS, strict=True)) + F.randn(seed=99) * 0.5
frame = frame.withColumn("label", (score > 0).cast("int"))
frame.coalesce(1).write.mode("overwrite").parquet(args.out)
mlflow.log_metric("rows", spark.read.parquet(args.out).count())
spark.stop()
