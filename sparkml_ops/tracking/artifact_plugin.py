"""Entry-point target for the ``delta-artifacts`` scheme, importable without importing MLflow.

MLflow loads ``mlflow.artifact_repository`` entry points while it is itself being imported;
a target that imported MLflow at module level could hit a circular import and lose the
scheme. So the entry point names this builder, which imports the repository on first use.
:func:`register` adds the scheme at run time too (the tracking store calls it on import), so
it works even where the package's entry points are not installed.
"""

from __future__ import annotations

from typing import Any

SCHEME = "delta-artifacts"


def artifact_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> Any:
    from sparkml_ops.tracking.artifact_repo import DeltaArtifactRepository

    return DeltaArtifactRepository(artifact_uri, tracking_uri, registry_uri)


def register() -> None:
    """Register :func:`artifact_repository` with MLflow's registry unless already there."""
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry as registry

    if SCHEME not in registry.get_registered_artifact_repositories():
        registry.register(SCHEME, artifact_repository)
