"""MLflow tracking-store plugin over the Delta tables of :mod:`sparkml_ops.lake`."""
