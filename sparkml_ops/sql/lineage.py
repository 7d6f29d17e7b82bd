"""Data lineage through MLflow's dataset model: what went into a run, and getting it back.

``log_input`` pins a source — a Delta table at the exact version read, Parquet/CSV files with
a content digest, or the table/files behind a Spark DataFrame — and logs it as an MLflow
dataset input of the run, so the stock client and UI see it. ``load_input`` returns exactly
that data again (Delta time travel; a digest check for files). ``describe`` lists a run's
inputs and the models it produced.
"""

from __future__ import annotations

import os
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.validation import _validate_run_id

from sparkml_ops import config
from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.sql import datasets
from sparkml_ops.sql.datasets import DataSource, Kind


def log_input(source: Any, *, name: str | None = None, context: str = "training", version: int | None = None,
              format: Kind | None = None, run_id: str | None = None) -> Dataset:
    """Record ``source`` as an input of a run, pinned to exact data, so :func:`load_input` can read it back.

    Args:
        source: a path (Delta table, Parquet or CSV file or directory), a ``deltalake.DeltaTable``,
            or a Spark DataFrame read from one of those.
        name: the dataset's name (default: from the source).
        context: MLflow's dataset context tag (``training``, ``evaluation`` …).
        version: a Delta version to pin (default: the current one, or for a DataFrame the one
            it reads).
        format: ``delta``, ``parquet`` or ``csv`` (default: from the path).
        run_id: the run (default: the active run, started if none, as ``mlflow.log_*`` do).

    Returns the logged MLflow dataset.

    Raises:
        BadInput: an empty name or context, a bad version or an unreadable source.

    Example: ``log_input("/data/features", version=3, context="training")``.
    """
    if not isinstance(context, str) or not context.strip():
        raise BadInput(f"context={context!r} must be a non-empty string such as 'training' or 'evaluation'")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise BadInput(f"name={name!r} must be a non-empty string")
    pinned = resolve_source(source, version=version, format=format)
    dataset = datasets.to_mlflow(pinned, name or pinned.default_name)
    if run_id is None:
        run_id = (mlflow.active_run() or mlflow.start_run()).info.run_id
    MlflowClient().log_inputs(run_id, datasets=[DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, context)])])
    return dataset


def resolve_source(source: Any, *, version: int | None = None, format: Kind | None = None) -> DataSource:
    """Pin ``source`` to exact data without logging it: what :func:`log_input` would record.

    Args:
        source, version, format: as in :func:`log_input`.

    Raises:
        BadInput: a bad version or format, a path with nothing at it, or a source of an
            unsupported type.

    Example: ``resolve_source("/data/features").version`` (the Delta version a run would pin).
    """
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise BadInput(f"version={version!r} must be a Delta table version (an int >= 0)")
    storage = config.resolve("storage_options") or None
    if isinstance(source, (str, os.PathLike)):
        return datasets.from_path(source, version=version, format=format, storage_options=storage)
    from sparkml_ops.lake.delta import is_table_object

    if is_table_object(source):
        return datasets.from_delta(source.table_uri, version=source.version() if version is None else version,
                                   storage_options=storage)
    if type(source).__module__.startswith("pyspark.") and hasattr(source, "inputFiles"):
        if format is not None:
            raise BadInput("format= applies to paths; a DataFrame's format comes from the files it reads")
        return datasets.from_spark(source, version=version)
    raise BadInput(f"cannot log an input of type {type(source).__name__}; give a path (Delta table, Parquet or "
                   "CSV file or directory), a deltalake.DeltaTable or a Spark DataFrame read from one")


def load_input(run_id: str, name: str, spark: Any = None, *, digest: str | None = None):
    """Exactly the data input ``name`` of run ``run_id`` was: an Arrow table, or a Spark DataFrame with ``spark``.

    Args:
        run_id: the run that logged the input (:func:`log_input` or ``mlflow.log_input``).
        name: the dataset's name.
        spark: a SparkSession to read it as a DataFrame (default: read it as a pyarrow Table).
        digest: which input when the run logged several of one name.

    Raises:
        NotFound: the run has no input of that name (the error lists its inputs).
        BadInput: several inputs of that name and no ``digest``.
        InvalidState: a logged file changed since it was logged.
        StorageError: the Delta version is no longer readable (vacuumed).

    Example: ``train = load_input(run_id, "features", spark)``.
    """
    run = MlflowClient().get_run(run_id)
    dataset_inputs = run.inputs.dataset_inputs if run.inputs else []
    matches = [i.dataset for i in dataset_inputs
               if i.dataset.name == name and (digest is None or i.dataset.digest == digest)]
    if not matches:
        known = sorted({i.dataset.name for i in dataset_inputs})
        raise NotFound(f"run {run_id} has no dataset input named {name!r}"
                       + (f" with digest {digest}" if digest else "") + f"; its inputs: {known or 'none'}")
    if len({d.digest for d in matches}) > 1:
        raise BadInput(f"run {run_id} has {len(matches)} different inputs named {name!r} (digests "
                       f"{sorted(d.digest for d in matches)}); pass digest= to choose one")
    return datasets.load(datasets.from_mlflow(matches[0]), spark,
                         storage_options=config.resolve("storage_options") or None)


def describe(run_id: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """What went into a run and what came out: inputs, logged models, registered versions, as a dict.

    Args:
        run_id: the run.
        tracking_uri: where it lives (default: MLflow's current tracking URI).

    Raises:
        MlflowException: a malformed run id (``INVALID_PARAMETER_VALUE``) or no such run
            (``RESOURCE_DOES_NOT_EXIST``).

    Example: ``describe(run_id)["inputs"][0]["version"]`` (the Delta version the run read).
    """
    _validate_run_id(run_id)
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    inputs = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        d = item.dataset
        tags = {t.key: t.value for t in item.tags or []}
        try:
            pinned = datasets.from_mlflow(d)
            where, version = pinned.location, pinned.version
        except (BadInput, MlflowException):
            where, version = d.source, None
        inputs.append({"name": d.name, "context": tags.get(MLFLOW_DATASET_CONTEXT), "source_type": d.source_type,
                       "location": where, "version": version, "digest": d.digest})
    model_inputs = [m.model_id for m in ((run.inputs.model_inputs if run.inputs else None) or [])]
    models: dict[str, dict[str, Any]] = {}
    output_ids = [o.model_id for o in (run.outputs.model_outputs if run.outputs else [])]
    for model_id in output_ids:
        models[model_id] = _model(client.get_logged_model(model_id))
    produced = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                           filter_string=f"source_run_id = '{run_id}'")
    for model in produced:
        models.setdefault(model.model_id, _model(model))
    return {"run_id": run_id, "run_name": run.info.run_name, "experiment": experiment.name,
            "status": run.info.status, "inputs": inputs, "model_inputs": model_inputs,
            "logged_models": list(models.values()), "registered_versions": _registered(client, run_id)}


def _model(model: Any) -> dict[str, Any]:
    return {"model_id": model.model_id, "name": model.name, "status": str(model.status),
            "artifact_location": model.artifact_location}


def _registered(client: MlflowClient, run_id: str) -> list[dict[str, Any]]:
    """Registered model versions built from the run, where a model registry is available."""
    try:
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except MlflowException:  # this tracking URI has no model registry (yet)
        return []
    return [{"name": v.name, "version": v.version, "stage": getattr(v, "current_stage", None)} for v in versions]
