"""MLflow 3's LoggedModel API (what ``log_model`` calls) on the logged_models tables."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import LifecycleStage, LoggedModel, LoggedModelStatus
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.search_utils import SearchLoggedModelsUtils
from mlflow.utils.uri import append_to_uri_path
from mlflow.utils.validation import _validate_logged_model_name, _validate_param, _validate_tag

from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.tracking import entities


def inactive_experiment_message(experiment_id: str, stage: str) -> str:
    """MLflow's SQL store's wording, which tools match, for a write into a deleted experiment."""
    return f"The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."

SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT = 100


class LoggedModelsMixin:
    """Needs ``self.lake``, ``self.state`` and ``self.get_experiment`` from the store."""

    lake: Any
    state: Any

    def create_logged_model(self, experiment_id, name=None, source_run_id=None, tags=None, params=None,
                            model_type=None) -> LoggedModel:
        _validate_logged_model_name(name)
        experiment = self.get_experiment(experiment_id)  # type: ignore[attr-defined]
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise BadInput(inactive_experiment_message(experiment_id, experiment.lifecycle_stage))
        for tag in tags or []:
            _validate_tag(tag.key, tag.value)
        for param in params or []:
            _validate_param(param.key, param.value)
        now = int(time.time() * 1000)
        model_id = f"m-{uuid.uuid4().hex}"
        row = {
            "model_id": model_id, "experiment_id": str(experiment_id), "name": name or _generate_random_name(),
            "artifact_location": append_to_uri_path(experiment.artifact_location, "models", model_id, "artifacts"),
            "creation_timestamp": now, "last_updated_timestamp": now, "model_type": model_type,
            "source_run_id": source_run_id, "status": str(LoggedModelStatus.PENDING),
            "status_message": None, "lifecycle_stage": LifecycleStage.ACTIVE,
        }
        self.lake.append("logged_models", entities.columns([row]))
        self._append_model_params(model_id, params or [])
        self._append_model_tags(model_id, {t.key: str(t.value) for t in tags or []})
        self.lake.commit_now()  # its id may go to another process at once (another server worker)
        return self.get_logged_model(model_id)

    def log_logged_model_params(self, model_id: str, params) -> None:
        """``mlflow.log_model_params``: add params to a logged model (a deleted one too, as MLflow's SQL store)."""
        self._model_row(model_id, allow_deleted=True)
        self._append_model_params(model_id, [_validate_param(p.key, p.value) for p in params])

    def _append_model_params(self, model_id: str, params) -> None:
        if params:
            self.lake.append("logged_model_params", entities.columns(
                [{"model_id": model_id, "key": p.key, "value": str(p.value)} for p in params]))

    def _model_row(self, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        table = self.state.logged_models()
        hit = table.filter(pc.equal(table.column("model_id"), model_id))
        if hit.num_rows == 0 or (not allow_deleted and hit.column("lifecycle_stage")[0].as_py()
                                 == LifecycleStage.DELETED):
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        row = hit.to_pylist()[0]
        row.pop("seq", None)
        return row

    def _model_entity(self, row: dict[str, Any]) -> LoggedModel:
        model_id = row["model_id"]
        return entities.logged_model(
            row,
            self.state.logged_model_tags().pylist(model_id),
            self.state.logged_model_params().pylist(model_id),
            self.state.model_metrics().pylist(model_id),
        )

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self._model_entity(self._model_row(model_id, allow_deleted))

    # Updates, tags and params reach a deleted model too, as in MLflow's SQL store.
    def _update_model(self, model_id: str, **changes: Any) -> None:
        row = self._model_row(model_id, allow_deleted=True)
        row.update(changes, last_updated_timestamp=int(time.time() * 1000))
        self.lake.append("logged_models", entities.columns([row]))

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        if not isinstance(status, LoggedModelStatus):
            raise BadInput(f"status must be a LoggedModelStatus, got {status!r}")
        self._update_model(model_id, status=str(status))
        return self.get_logged_model(model_id, allow_deleted=True)

    def delete_logged_model(self, model_id: str) -> None:
        self._update_model(model_id, lifecycle_stage=LifecycleStage.DELETED)

    def set_logged_model_tags(self, model_id: str, tags) -> None:
        self._model_row(model_id, allow_deleted=True)
        for tag in tags:
            _validate_tag(tag.key, tag.value)
        self._append_model_tags(model_id, {t.key: str(t.value) for t in tags})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        model = self.get_logged_model(model_id, allow_deleted=True)
        if key not in model.tags:
            raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")
        self.lake.append("logged_model_tags", {"model_id": [model_id], "key": [key], "value": [None],
                                               "deleted": [True]})

    def _append_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        if tags:
            self.lake.append("logged_model_tags", {
                "model_id": [model_id] * len(tags), "key": list(tags), "value": list(tags.values()),
                "deleted": [False] * len(tags)})

    def record_logged_model(self, run_id, mlflow_model):
        """MLflow 2-style ``mlflow.log-model.history`` tag, still written by some flavors."""
        import json

        from mlflow.entities import RunTag
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_MODELS

        run = self.get_run(run_id)
        history = json.loads(run.data.tags.get(MLFLOW_LOGGED_MODELS, "[]"))
        self.set_tag(run_id, RunTag(MLFLOW_LOGGED_MODELS, json.dumps(history + [mlflow_model.get_tags_dict()])))

    def search_logged_models(self, experiment_ids, filter_string=None, datasets=None, max_results=None,
                             order_by=None, page_token=None) -> PagedList[LoggedModel]:
        if datasets and not all(d.get("dataset_name") for d in datasets):
            raise BadInput("`dataset_name` in the `datasets` clause must be specified.")
        table = self.state.logged_models()
        mask = pc.and_(
            pc.is_in(table.column("experiment_id"), value_set=pa.array([str(e) for e in experiment_ids], pa.string())),
            pc.equal(table.column("lifecycle_stage"), LifecycleStage.ACTIVE),
        )
        candidates = [self._model_entity(r) for r in table.filter(mask).to_pylist()]
        # Logged models per experiment are few; MLflow's own matcher keeps its exact semantics.
        matched = SearchLoggedModelsUtils.filter_logged_models(candidates, filter_string, datasets)
        ordered = SearchLoggedModelsUtils.sort(matched, order_by)
        page, token = SearchLoggedModelsUtils.paginate(
            ordered, page_token, max_results or SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT)
        return PagedList(page, token)
