"""Conversions between table rows and MLflow entities, in one place."""

from __future__ import annotations

import json
from typing import Any

from mlflow.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunTag,
)
from mlflow.entities.logged_model_parameter import LoggedModelParameter
from mlflow.entities.logged_model_tag import LoggedModelTag


def experiment(row: dict[str, Any], tags: list[dict[str, Any]]) -> Experiment:
    return Experiment(
        experiment_id=row["experiment_id"],
        name=row["name"],
        artifact_location=row["artifact_location"],
        lifecycle_stage=row["lifecycle_stage"],
        tags=[ExperimentTag(t["key"], t["value"]) for t in tags],
        creation_time=row["creation_time"],
        last_update_time=row["last_update_time"],
    )


def run_info(row: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=row["run_id"],
        experiment_id=row["experiment_id"],
        user_id=row["user_id"],
        status=row["status"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        lifecycle_stage=row["lifecycle_stage"],
        artifact_uri=row["artifact_uri"],
        run_name=row["run_name"],
    )


def metric(row: dict[str, Any]) -> Metric:
    return Metric(
        key=row["key"], value=row["value"], timestamp=row["timestamp"], step=row["step"],
        model_id=row.get("model_id"), dataset_name=row.get("dataset_name"),
        dataset_digest=row.get("dataset_digest"), run_id=row.get("run_id"),
    )


def run(
    info_row: dict[str, Any],
    params: list[dict[str, Any]],
    metrics: list[dict[str, Any]],
    tags: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
) -> Run:
    return run_of(
        info_row,
        [Param(p["key"], p["value"]) for p in params],
        [metric(m) for m in metrics],
        [RunTag(t["key"], t["value"]) for t in tags],
        inputs,
        outputs,
    )


def run_of(
    info_row: dict[str, Any],
    params: list[Param],
    metrics: list[Metric],
    tags: list[RunTag],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
) -> Run:
    """A run from ready entities (bulk reads build those column-wise, not row by row)."""
    data = RunData(metrics=metrics, params=params, tags=tags)
    run_inputs = RunInputs(
        dataset_inputs=[dataset_input(i) for i in inputs if i["kind"] == "dataset"],
        model_inputs=[LoggedModelInput(i["model_id"]) for i in inputs if i["kind"] == "model"],
    )
    run_outputs = RunOutputs([LoggedModelOutput(o["model_id"], o["step"]) for o in outputs])
    return Run(run_info(info_row), data, run_inputs, run_outputs)


def dataset_input(row: dict[str, Any]) -> DatasetInput:
    dataset = Dataset(
        name=row["name"], digest=row["digest"], source_type=row["source_type"],
        source=row["source"], schema=row["schema"], profile=row["profile"],
    )
    tags = [InputTag(k, v) for k, v in json.loads(row["tags"] or "[]")]
    return DatasetInput(dataset, tags)


def dataset_input_columns(run_id: str, inputs: list[DatasetInput], context_key: str) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {n: [] for n in ("run_id", "kind", "name", "digest", "source_type",
                                                  "source", "schema", "profile", "tags", "context",
                                                  "model_id")}
    for item in inputs:
        d = item.dataset
        tags = [(t.key, t.value) for t in (item.tags or [])]
        for name, value in (("run_id", run_id), ("kind", "dataset"), ("name", d.name),
                            ("digest", d.digest), ("source_type", d.source_type), ("source", d.source),
                            ("schema", d.schema), ("profile", d.profile), ("tags", json.dumps(tags)),
                            ("context", next((v for k, v in tags if k == context_key), None)),
                            ("model_id", None)):
            cols[name].append(value)
    return cols


def logged_model(
    row: dict[str, Any],
    tags: list[dict[str, Any]],
    params: list[dict[str, Any]],
    metrics: list[dict[str, Any]],
) -> LoggedModel:
    return LoggedModel(
        experiment_id=row["experiment_id"],
        model_id=row["model_id"],
        name=row["name"],
        artifact_location=row["artifact_location"],
        creation_timestamp=row["creation_timestamp"],
        last_updated_timestamp=row["last_updated_timestamp"],
        model_type=row["model_type"],
        source_run_id=row["source_run_id"],
        status=LoggedModelStatus(row["status"]),
        status_message=row["status_message"],
        tags=[LoggedModelTag(t["key"], t["value"]) for t in tags],
        params=[LoggedModelParameter(p["key"], p["value"]) for p in params],
        metrics=[metric(m) for m in metrics],  # a list, never None: MLflow's dataset filter iterates it
    )


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Row dicts with the same keys -> column dict, the lake's write format."""
    if not rows:
        return {}
    return {name: [r[name] for r in rows] for name in rows[0]}
