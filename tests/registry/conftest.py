"""Registry fixtures: our Delta store on a fresh root, MLflow's SQLite registry store as the reference."""

from __future__ import annotations

import pytest


@pytest.fixture
def registry(tracking_uri: str):
    from sparkml_ops.registry.store import DeltaRegistryStore

    return DeltaRegistryStore(tracking_uri)


@pytest.fixture(scope="session")
def sqlite_registry(tmp_path_factory):
    """One SQLite registry per session (its migrations take seconds); tests use their own names."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(f"sqlite:///{tmp_path_factory.mktemp('sqlite-registry')}/registry.db")
