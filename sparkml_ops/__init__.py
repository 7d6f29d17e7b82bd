"""sparkml_ops: MLflow's interfaces on Delta Lake and Spark.

Importing this package starts no JVM and opens no table; everything is lazy.
"""

__version__ = "0.1.0"
