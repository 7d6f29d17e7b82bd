"""MLflow model-registry store on a Delta root: ``MlflowClient(registry_uri="delta:/path")``.

State lives in the root's append-only ``registry`` table. Every change is one synchronous,
serialized Delta commit (see ``lake/serial.py``): it is validated against the newest state
and lands as exactly the next table version, or it re-validates and tries again. So a
version number is taken once, a name exists once, an alias moves in one step, a failed
call writes nothing, and a call that returns is visible to every process.
Semantics, error codes and messages follow MLflow's SQLAlchemy registry store.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.entities.model_registry.model_version_stages import (
    ALL_STAGES,
    DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    STAGE_NONE,
    get_canonical_stage,
)
from mlflow.entities.model_registry.model_version_status import ModelVersionStatus
from mlflow.exceptions import MlflowException
from mlflow.prompt.registry_utils import handle_resource_already_exist_error, has_prompt_tag
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from mlflow.store.model_registry.abstract_store import AbstractStore
from mlflow.utils.search_utils import SearchUtils
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    _REGISTERED_MODEL_ALIAS_LATEST,
    _validate_model_alias_name,
    _validate_model_alias_name_reserved,
    _validate_model_name,
    _validate_model_renaming,
    _validate_model_version_tag,
    _validate_registered_model_tag,
    _validate_tag_name,
)

from sparkml_ops import config
from sparkml_ops.lake import Lake, parse_root
from sparkml_ops.lake.serial import SerialTable, rows_table, serialized
from sparkml_ops.registry import entities, search
from sparkml_ops.registry.state import ALIAS, MODEL, MODEL_TAG, VERSION, VERSION_TAG, RegistryState, Snapshot
from sparkml_ops.registry.unsupported import UnsupportedRegistryMixin
from sparkml_ops.tracking.compat import model_version_number
from sparkml_ops.tracking.mlflow_errors import mlflow_errors

TABLE = "registry"
_READY = ModelVersionStatus.to_string(ModelVersionStatus.READY)
_REDACTED = {"description": None, "user_id": None, "source": "REDACTED-SOURCE-PATH", "run_id": "REDACTED-RUN-ID",
             "run_link": "REDACTED-RUN-LINK", "status_message": None, "current_stage": STAGE_DELETED_INTERNAL}
_open_states: dict[str, RegistryState] = {}
_open_lock = threading.Lock()


def _model_not_found(name: str) -> MlflowException:
    return MlflowException(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST)


def _version_not_found(name: str, version: Any) -> MlflowException:
    return MlflowException(f"Model Version (name={name}, version={version}) not found", RESOURCE_DOES_NOT_EXIST)


def _check_at_most(max_results: int, limit: int) -> None:
    if max_results > limit:
        raise MlflowException(
            "Invalid value for request parameter max_results. It must be at most "
            f"{limit}, but got value {max_results}", INVALID_PARAMETER_VALUE)


def _state_for(lake: Lake) -> RegistryState:
    """One state per root and process, shared by every store object (they read each other's writes)."""
    with _open_lock:
        state = _open_states.get(lake.location.uri)
        if state is None:
            state = RegistryState(SerialTable(lake.location, TABLE))
            _open_states[lake.location.uri] = state
        return state


@mlflow_errors
class DeltaRegistryStore(UnsupportedRegistryMixin, AbstractStore):
    """MLflow's registry ``AbstractStore`` on the ``registry`` Delta table of a root."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None) -> None:
        super().__init__(store_uri, tracking_uri)
        self.location = parse_root(store_uri or config.default_root(), config.resolve("storage_options"))
        self.lake = Lake.open(self.location)  # creates the root and its tables if needed
        self.tracking_uri = tracking_uri or self.location.tracking_uri()
        self.state = _state_for(self.lake)
        self._write_lock = threading.Lock()  # one change at a time per process; processes serialize on the log

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _read(self) -> Iterator[Snapshot]:
        with self.state.current(sync=True) as snapshot:
            yield snapshot

    def _change(self, build: Any) -> Any:
        """Validate-and-write atomically: ``build(snapshot) -> (rows, result)``."""
        def attempt() -> tuple[pa.Table | None, Any]:
            with self.state.current(sync=False) as snapshot:
                rows, result = build(snapshot)
            return (rows_table(TABLE, rows) if rows else None), result

        def sync() -> int:
            return self.state.sync()

        with self._write_lock:
            result = serialized(self.state.table, sync, attempt)
            self.state.sync(refresh=False)  # fold in our own commit
            return result

    @staticmethod
    def _model_key(snap: Snapshot, name: str) -> str:
        _validate_model_name(name)
        key = snap.by_name.get(name)
        if key is None:
            raise _model_not_found(name)
        return key

    @staticmethod
    def _version_row(snap: Snapshot, name: str, version: Any) -> tuple[str, dict[str, Any]]:
        _validate_model_name(name)
        number = model_version_number(version)
        key = snap.by_name.get(name)
        row = snap.versions.get(key, {}).get(number) if key is not None else None
        if row is None or row["current_stage"] == STAGE_DELETED_INTERNAL:
            raise _version_not_found(name, number)
        return key, row  # type: ignore[return-value]

    @staticmethod
    def _model_row(snap: Snapshot, key: str, **changes: Any) -> dict[str, Any]:
        return dict(snap.models[key], kind=MODEL, **changes)

    # ------------------------------------------------------------------ registered models

    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        _validate_model_name(name)
        for tag in tags or []:
            _validate_registered_model_tag(tag.key, tag.value)
        tag_values = {t.key: t.value for t in tags or []}

        def build(snap: Snapshot):
            existing = snap.by_name.get(name)
            if existing is not None:
                handle_resource_already_exist_error(
                    name, snap.model_tags.get(existing, {}).get("mlflow.prompt.is_prompt") == "true",
                    has_prompt_tag(tags))
            key, now = uuid.uuid4().hex, get_current_time_millis()
            rows = [{"kind": MODEL, "model_key": key, "name": name, "description": description,
                     "creation_time": now, "last_updated_time": now, "deleted": False}]
            rows += [{"kind": MODEL_TAG, "model_key": key, "key": k, "value": v, "deleted": False}
                     for k, v in tag_values.items()]
            return rows, key

        key = self._change(build)
        with self._read() as snap:
            return entities.registered_model(snap, key)

    def update_registered_model(self, name, description, deployment_job_id=None):
        def build(snap: Snapshot):
            key = self._model_key(snap, name)
            return [self._model_row(snap, key, description=description,
                                    last_updated_time=get_current_time_millis())], key

        return self._entity_after(self._change(build))

    def _entity_after(self, key: str) -> RegisteredModel:
        with self._read() as snap:
            return entities.registered_model(snap, key)

    def rename_registered_model(self, name, new_name):
        _validate_model_renaming(new_name)

        def build(snap: Snapshot):
            key = self._model_key(snap, name)
            clash = snap.by_name.get(new_name)
            if clash is not None and clash != key:
                raise MlflowException(f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS)
            now = get_current_time_millis()
            rows = [self._model_row(snap, key, name=new_name, last_updated_time=now)]
            rows += [dict(v, kind=VERSION, name=new_name, last_updated_time=now)
                     for v in snap.versions.get(key, {}).values()]
            return rows, key

        return self._entity_after(self._change(build))

    def delete_registered_model(self, name):
        def build(snap: Snapshot):
            key = self._model_key(snap, name)
            return [self._model_row(snap, key, deleted=True)], None

        self._change(build)

    def search_registered_models(self, filter_string=None, max_results=SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
                                 order_by=None, page_token=None):
        _check_at_most(max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD)
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._read() as snap:
            keys, more = search.search_models(self.state, filter_string, order_by, offset, max_results)
            models = [entities.registered_model(snap, k) for k in keys]
        return PagedList(models, SearchUtils.create_page_token(offset + max_results) if more else None)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._read() as snap:
            return entities.registered_model(snap, self._model_key(snap, name))

    def get_latest_versions(self, name, stages=None):
        expected = {get_canonical_stage(s) for s in (stages or ALL_STAGES)}
        with self._read() as snap:
            key = self._model_key(snap, name)
            versions = [mv for mv in entities.latest_versions(snap, key) if mv.current_stage in expected]
            aliases = snap.aliases.get(key, {})
            for mv in versions:
                mv.aliases = [a for a, v in aliases.items() if v == mv.version]
            return versions

    def set_registered_model_tag(self, name, tag):
        _validate_model_name(name)
        _validate_registered_model_tag(tag.key, tag.value)
        self._change(lambda snap: ([{"kind": MODEL_TAG, "model_key": self._model_key(snap, name), "key": tag.key,
                                     "value": tag.value, "deleted": False}], None))

    def delete_registered_model_tag(self, name, key):
        _validate_model_name(name)
        _validate_tag_name(key)

        def build(snap: Snapshot):
            model_key = self._model_key(snap, name)
            if key not in snap.model_tags.get(model_key, {}):
                return None, None
            return [{"kind": MODEL_TAG, "model_key": model_key, "key": key, "deleted": True}], None

        self._change(build)

    # ------------------------------------------------------------------ model versions

    def _storage_location(self, source: str, run_id: str | None, model_id: str | None) -> tuple[str, str | None]:
        """Where the version's files are, and its run: resolved from ``models:/`` sources as MLflow does."""
        from mlflow.store.artifact.utils.models import _parse_model_uri

        location = source
        if urlparse(source).scheme == "models":
            parsed = _parse_model_uri(source)
            try:
                if parsed.model_id is not None:
                    model = self._tracking_client().get_logged_model(parsed.model_id)
                    location, run_id = model.artifact_location, run_id or model.source_run_id
                else:
                    location = self.get_model_version_download_uri(parsed.name, parsed.version)
            except Exception as exc:  # MLflow's SQL store wraps every failure the same way
                raise MlflowException(
                    f"Unable to fetch model from model URI source artifact location '{source}'.Error: {exc}"
                ) from exc
        if not run_id and model_id:
            run_id = self._tracking_client().get_logged_model(model_id).source_run_id
        return location, run_id

    def _tracking_client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None, description=None,
                             local_model_path=None, model_id=None):
        _validate_model_name(name)
        for tag in tags or []:
            _validate_model_version_tag(tag.key, tag.value)
        location, run_id = self._storage_location(source, run_id, model_id)
        tag_values = {t.key: t.value for t in tags or []}

        def build(snap: Snapshot):
            key = self._model_key(snap, name)
            number = max(snap.versions.get(key, {}), default=0) + 1
            now = get_current_time_millis()
            rows = [self._model_row(snap, key, last_updated_time=now),
                    {"kind": VERSION, "model_key": key, "name": name, "version": number, "creation_time": now,
                     "last_updated_time": now, "description": description, "user_id": None,
                     "current_stage": STAGE_NONE, "source": source, "storage_location": location,
                     "run_id": run_id, "run_link": run_link, "status": _READY, "status_message": None,
                     "model_id": model_id, "deleted": False}]
            rows += [{"kind": VERSION_TAG, "model_key": key, "version": number, "key": k, "value": v,
                      "deleted": False} for k, v in tag_values.items()]
            return rows, (key, number)

        key, number = self._change(build)
        with self._read() as snap:
            return entities.model_version(snap, key, snap.versions[key][number])

    def _version_after(self, result: tuple[str, int]) -> ModelVersion:
        key, number = result
        with self._read() as snap:
            return entities.model_version(snap, key, snap.versions[key][number])

    def update_model_version(self, name, version, description=None):
        def build(snap: Snapshot):
            key, row = self._version_row(snap, name, version)
            return [dict(row, description=description, last_updated_time=get_current_time_millis())], (
                key, row["version"])

        return self._version_after(self._change(build))

    def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
        is_active_stage = get_canonical_stage(stage) in DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS
        if archive_existing_versions and not is_active_stage:
            raise MlflowException(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are {DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS}")
        canonical = get_canonical_stage(stage)

        def build(snap: Snapshot):
            key, row = self._version_row(snap, name, version)
            now = get_current_time_millis()
            rows = []
            if archive_existing_versions:
                rows += [dict(v, current_stage=STAGE_ARCHIVED, last_updated_time=now)
                         for n, v in snap.versions[key].items()
                         if n != row["version"] and v["current_stage"] == canonical]
            rows += [dict(row, current_stage=canonical, last_updated_time=now),
                     self._model_row(snap, key, last_updated_time=now)]
            return rows, (key, row["version"])

        return self._version_after(self._change(build))

    def delete_model_version(self, name, version):
        model_version_number(version)

        def build(snap: Snapshot):
            key, row = self._version_row(snap, name, version)
            now = get_current_time_millis()
            rows = [self._model_row(snap, key, last_updated_time=now), dict(row, last_updated_time=now, **_REDACTED)]
            rows += [{"kind": ALIAS, "model_key": key, "key": a, "target_version": v, "deleted": True}
                     for a, v in snap.aliases.get(key, {}).items() if v == row["version"]]
            return rows, None

        self._change(build)

    def get_model_version(self, name, version):
        with self._read() as snap:
            key, row = self._version_row(snap, name, version)
            return entities.model_version(snap, key, row)

    def get_model_version_download_uri(self, name, version):
        with self._read() as snap:
            _, row = self._version_row(snap, name, version)
            return row["storage_location"] or row["source"]

    def search_model_versions(self, filter_string=None, max_results=SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
                              order_by=None, page_token=None):
        if not isinstance(max_results, int) or max_results < 1:
            raise MlflowException(
                f"Invalid value for max_results. It must be a positive integer, but got {max_results}",
                INVALID_PARAMETER_VALUE)
        _check_at_most(max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD)
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._read() as snap:
            hits, more = search.search_versions(self.state, filter_string, order_by, offset, max_results)
            versions = [entities.model_version(snap, k, snap.versions[k][n], aliases=False) for k, n in hits]
        return PagedList(versions, SearchUtils.create_page_token(offset + max_results) if more else None)

    def set_model_version_tag(self, name, version, tag):
        _validate_model_name(name)
        number = model_version_number(version)
        _validate_model_version_tag(tag.key, tag.value)

        def build(snap: Snapshot):
            key, _ = self._version_row(snap, name, number)
            return [{"kind": VERSION_TAG, "model_key": key, "version": number, "key": tag.key, "value": tag.value,
                     "deleted": False}], None

        self._change(build)

    def delete_model_version_tag(self, name, version, key):
        _validate_model_name(name)
        number = model_version_number(version)
        _validate_tag_name(key)

        def build(snap: Snapshot):
            model_key, _ = self._version_row(snap, name, number)
            if key not in snap.version_tags.get((model_key, number), {}):
                return None, None
            return [{"kind": VERSION_TAG, "model_key": model_key, "version": number, "key": key,
                     "deleted": True}], None

        self._change(build)

    # ------------------------------------------------------------------ aliases

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
        number = model_version_number(version)

        def build(snap: Snapshot):
            key, _ = self._version_row(snap, name, number)
            return [{"kind": ALIAS, "model_key": key, "key": alias, "target_version": number, "deleted": False}], None

        self._change(build)

    def delete_registered_model_alias(self, name, alias):
        _validate_model_name(name)
        _validate_model_alias_name(alias)

        def build(snap: Snapshot):
            key = self._model_key(snap, name)
            target = snap.aliases.get(key, {}).get(alias)
            if target is None:
                return None, None
            return [{"kind": ALIAS, "model_key": key, "key": alias, "target_version": target, "deleted": True}], None

        self._change(build)

    def get_model_version_by_alias(self, name, alias):
        _validate_model_name(name)
        _validate_model_alias_name(alias)
        if alias.lower() == _REGISTERED_MODEL_ALIAS_LATEST:
            if versions := self.get_latest_versions(name):
                return max(versions, key=lambda mv: int(mv.version))
            raise MlflowException(f"Latest version not found for model {name}.", RESOURCE_DOES_NOT_EXIST)
        with self._read() as snap:
            key = self._model_key(snap, name)
            target = snap.aliases.get(key, {}).get(alias)
            if target is None:
                raise MlflowException(f"Registered model alias {alias} not found.", INVALID_PARAMETER_VALUE)
            key, row = self._version_row(snap, name, target)
            return entities.model_version(snap, key, row)

    def _await_model_version_creation(self, mv, await_creation_for):
        """Versions are READY when ``create_model_version`` returns: nothing to wait for."""


def _reset_after_fork() -> None:
    global _open_lock
    _open_states.clear()  # delta-rs handles do not survive fork
    _open_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
