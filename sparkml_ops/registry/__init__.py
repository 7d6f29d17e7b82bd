"""MLflow model registry on Delta tables: registered models, versions, tags, aliases.

``MlflowClient(registry_uri="delta:/root")`` (or just the tracking URI) reaches
:class:`sparkml_ops.registry.store.DeltaRegistryStore` through the ``delta`` entry point.
"""
