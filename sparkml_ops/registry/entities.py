"""Registry rows as MLflow entities, shaped exactly as MLflow's SQL registry store shapes them."""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL

from sparkml_ops.registry.state import Snapshot


def model_version(snap: Snapshot, model_key: str, row: dict[str, Any], *, aliases: bool = True) -> ModelVersion:
    """``aliases=False``: as MLflow's SQL store returns versions from searches and inside a
    registered model's ``latest_versions`` (no aliases there)."""
    version = row["version"]
    tags = snap.version_tags.get((model_key, version), {})
    names = sorted(a for a, v in snap.aliases.get(model_key, {}).items() if v == version) if aliases else []
    return ModelVersion(
        snap.models[model_key]["name"], version, row["creation_time"], row["last_updated_time"],
        row["description"], row["user_id"], row["current_stage"], row["source"], row["run_id"],
        row["status"], row["status_message"], [ModelVersionTag(k, v) for k, v in tags.items()],
        row["run_link"], names, model_id=row["model_id"],
    )


def latest_versions(snap: Snapshot, model_key: str) -> list[ModelVersion]:
    """The highest live version in each stage."""
    latest: dict[str, dict[str, Any]] = {}
    for row in snap.versions.get(model_key, {}).values():
        stage = row["current_stage"]
        if stage != STAGE_DELETED_INTERNAL and (stage not in latest or latest[stage]["version"] < row["version"]):
            latest[stage] = row
    return [model_version(snap, model_key, row, aliases=False) for row in latest.values()]


def registered_model(snap: Snapshot, model_key: str) -> RegisteredModel:
    row = snap.models[model_key]
    return RegisteredModel(
        row["name"], row["creation_time"], row["last_updated_time"], row["description"],
        latest_versions(snap, model_key),
        [RegisteredModelTag(k, v) for k, v in snap.model_tags.get(model_key, {}).items()],
        [RegisteredModelAlias(a, v) for a, v in snap.aliases.get(model_key, {}).items()],
    )
