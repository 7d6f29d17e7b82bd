"""MLflow tracking store on Delta tables: ``mlflow.set_tracking_uri("delta:/path")``.

Writes go through the lake's write-ahead log and group commit; reads combine the committed
snapshot with this process's pending rows. Hot logging paths keep a small per-process cache
of the runs this process touches, so a log call never re-reads a table.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.entities.metric import MetricWithRunId
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NAME
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    MAX_TAG_VAL_LENGTH,
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_dataset_inputs,
    _validate_experiment_artifact_location_length,
    _validate_experiment_name,
    _validate_experiment_tag,
    _validate_metric,
    _validate_param,
    _validate_param_keys_unique,
    _validate_run_id,
    _validate_tag,
    _validate_tag_name,
)

from sparkml_ops import config
from sparkml_ops.errors import AlreadyExists, BadInput, InvalidState, NotFound
from sparkml_ops.lake import Lake, RootLocation, current, parse_root
from sparkml_ops.tracking import artifact_plugin, bulk, current_search, entities, search
from sparkml_ops.tracking.artifact_uri import default_artifact_root
from sparkml_ops.tracking.genai import GenAIMixin
from sparkml_ops.tracking.history import MetricSamplingMixin
from sparkml_ops.tracking.logged_models import LoggedModelsMixin, inactive_experiment_message
from sparkml_ops.tracking.mlflow_errors import mlflow_errors
from sparkml_ops.tracking.state import (
    INPUT_KEYS,
    Grouped,
    TrackingState,
    drop_repeats,
    latest_by,
    latest_in_logging_order,
    latest_rows,
    live,
)

artifact_plugin.register()  # the delta-artifacts scheme, also without installed entry points

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
_TERMINAL = {RunStatus.to_string(s) for s in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _experiment_id_for(name: str, salt: int) -> str:
    """Deterministic ids: processes creating the same experiment at once agree on its id."""
    digest = hashlib.sha256(f"{name}\x00{salt}".encode()).hexdigest()
    return str(int(digest[:14], 16) + 1)


@mlflow_errors
class DeltaTrackingStore(LoggedModelsMixin, MetricSamplingMixin, GenAIMixin, AbstractStore):
    """MLflow ``AbstractStore`` whose state lives in Delta tables under one root."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.location: RootLocation = parse_root(
            store_uri or config.default_root(), config.resolve("storage_options")
        )
        self.lake = Lake.open(self.location)
        self.state = TrackingState(self.lake)
        self._artifact_root = artifact_uri or default_artifact_root(self.location)  # Delta-backed artifacts
        self._runs: dict[str, dict[str, Any]] = {}  # run rows this process knows, latest first
        self._params: dict[str, dict[str, str]] = {}
        self._cache_lock = threading.Lock()
        self._last_history: tuple[tuple[int, ...], str, str, pa.Table] | None = None
        self._current_state: current.CurrentState | None = None  # the root's current-state build, once read
        self._current_cache: tuple[tuple[Any, ...], current_search.CurrentView] | None = None
        self._ensure_default_experiment()

    # ================================================================== experiments

    def _ensure_default_experiment(self) -> None:
        if self._experiment_row(DEFAULT_EXPERIMENT_ID) is None:
            try:
                self._write_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, None, [])
            except OSError:  # a read-only root: reading still works
                pass

    def _experiments_table(self) -> pa.Table:
        return self.state.experiments()

    def _experiment_row(self, experiment_id: str) -> dict[str, Any] | None:
        # Every create_run looks its experiment up: a dict rebuilt only when the table changes.
        rows = self.state.derive("experiments", "experiment_rows", _experiment_rows_by_id)
        row = rows.get(str(experiment_id))
        return dict(row) if row is not None else None

    def _experiment_row_by_name(self, name: str) -> dict[str, Any] | None:
        table = self._experiments_table()
        hit = table.filter(pc.equal(table.column("name"), name))
        return hit.to_pylist()[-1] if hit.num_rows else None

    def _experiment_entity(self, row: dict[str, Any]) -> Experiment:
        return entities.experiment(row, self.state.experiment_tags().pylist(row["experiment_id"]))

    def _write_experiment(self, experiment_id: str, name: str, artifact_location: str | None,
                          tags: list[Any], stage: str = LifecycleStage.ACTIVE,
                          creation_time: int | None = None) -> None:
        now = _now_ms()
        location = artifact_location or append_to_uri_path(self._artifact_root, experiment_id)
        lsn = self.lake.append("experiments", entities.columns([{
            "experiment_id": experiment_id, "name": name, "artifact_location": location,
            "lifecycle_stage": stage, "creation_time": creation_time or now, "last_update_time": now,
        }]))
        if tags:
            lsn = self.lake.append("experiment_tags", entities.columns(
                [{"experiment_id": experiment_id, "key": t.key, "value": t.value, "deleted": False} for t in tags]
            ))
        self.lake.commit_through(lsn)  # its id may go to another process at once (a Spark executor)

    def create_experiment(self, name, artifact_location=None, tags=None):
        _validate_experiment_name(name)
        if artifact_location:
            artifact_location = resolve_uri_if_local(artifact_location)  # relative -> absolute, as MLflow's stores
            _validate_experiment_artifact_location_length(artifact_location)
        for tag in tags or []:
            _validate_experiment_tag(tag.key, tag.value)
        existing = self._experiment_row_by_name(name)
        if existing is not None:
            deleted = " It is deleted: restore it or choose another name." if existing[
                "lifecycle_stage"] == LifecycleStage.DELETED else ""
            raise AlreadyExists(f"Experiment(name={name}) already exists.{deleted}")
        taken = set(self._experiments_table().column("experiment_id").to_pylist())
        salt = 0
        while (experiment_id := _experiment_id_for(name, salt)) in taken:
            salt += 1
        self._write_experiment(experiment_id, name, artifact_location, list(tags or []))
        return experiment_id

    def get_experiment(self, experiment_id):
        row = self._experiment_row(str(experiment_id))
        if row is None:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        return self._experiment_entity(row)

    def get_experiment_by_name(self, experiment_name):
        row = self._experiment_row_by_name(experiment_name)
        return None if row is None else self._experiment_entity(row)

    def _update_experiment(self, experiment_id: str, **changes: Any) -> None:
        row = self._experiment_row(str(experiment_id))
        if row is None:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        row.update(changes, last_update_time=_now_ms())
        row.pop("seq", None)
        self.lake.append("experiments", entities.columns([row]))

    def delete_experiment(self, experiment_id):
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise BadInput("Cannot delete the default experiment '0'.")
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage == LifecycleStage.DELETED:  # MLflow's stores: not found
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        self._update_experiment(experiment_id, lifecycle_stage=LifecycleStage.DELETED)
        runs = self.state.runs()
        mine = runs.filter(pc.and_(pc.equal(runs.column("experiment_id"), str(experiment_id)),
                                   pc.equal(runs.column("lifecycle_stage"), LifecycleStage.ACTIVE)))
        self._write_run_rows([dict(r, lifecycle_stage=LifecycleStage.DELETED, deleted_time=_now_ms())
                              for r in mine.to_pylist()])

    def restore_experiment(self, experiment_id):
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.DELETED:  # MLflow's stores: not found
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        clash = self._experiment_row_by_name(experiment.name)
        if clash and clash["experiment_id"] != str(experiment_id):
            raise AlreadyExists(f"Cannot restore: an experiment named '{experiment.name}' exists.")
        self._update_experiment(experiment_id, lifecycle_stage=LifecycleStage.ACTIVE)
        runs = self.state.runs()
        mine = runs.filter(pc.and_(pc.equal(runs.column("experiment_id"), str(experiment_id)),
                                   pc.equal(runs.column("lifecycle_stage"), LifecycleStage.DELETED)))
        self._write_run_rows([dict(r, lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
                              for r in mine.to_pylist()])

    def rename_experiment(self, experiment_id, new_name):
        _validate_experiment_name(new_name)
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState("Cannot rename a non-active experiment.")
        clash = self._experiment_row_by_name(new_name)
        if clash and clash["experiment_id"] != str(experiment_id):
            raise AlreadyExists(f"Experiment(name={new_name}) already exists.")
        self._update_experiment(experiment_id, name=new_name)

    def set_experiment_tag(self, experiment_id, tag):
        _validate_experiment_tag(tag.key, tag.value)
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise BadInput(inactive_experiment_message(experiment_id, experiment.lifecycle_stage))
        self.lake.append("experiment_tags", entities.columns(
            [{"experiment_id": str(experiment_id), "key": tag.key, "value": str(tag.value), "deleted": False}]))

    def delete_experiment_tag(self, experiment_id, key):
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise BadInput(inactive_experiment_message(experiment_id, experiment.lifecycle_stage))
        if key not in experiment.tags:
            raise NotFound(f"No tag with name: {key} in experiment with id {experiment_id}")
        self.lake.append("experiment_tags", entities.columns(
            [{"experiment_id": str(experiment_id), "key": key, "value": None, "deleted": True}]))

    def search_experiments(self, view_type=ViewType.ACTIVE_ONLY, max_results=SEARCH_MAX_RESULTS_DEFAULT,
                           filter_string=None, order_by=None, page_token=None):
        if not isinstance(max_results, int) or max_results < 1:
            raise BadInput(f"max_results must be a positive integer, got {max_results!r}")
        table = _by_view_type(self._experiments_table(), view_type)
        table = search.filter_experiments(self.state, table, filter_string)
        table = search.order_experiments(table, order_by)
        page, token = search.paginate(table, page_token, max_results)
        return PagedList([self._experiment_entity(r) for r in page.to_pylist()], token)

    # ================================================================== runs

    def _run_row(self, run_id: str, view: current_search.CurrentView | None | bool = True) -> dict[str, Any]:
        """Latest row of a run: this process's cache first, then the tables.

        ``view``: the current view the caller already read (None: the root has none); True reads it.
        """
        _validate_run_id(run_id)
        with self._cache_lock:
            row = self._runs.get(run_id)
        if row is not None:
            return row
        if view is True:
            view = self._current_view()
        if isinstance(view, current_search.CurrentView):  # the build and its tail: the runs table is never read whole
            rix = view.run_rix(run_id)
            if rix is None:
                raise NotFound(f"Run with id={run_id} not found")
            return view.page_rows(np.array([rix]))[0]
        table = self.lake.read("runs")
        hit = latest_rows("runs", table.filter(pc.equal(table.column("run_id"), run_id)))
        if hit.num_rows == 0:
            raise NotFound(f"Run with id={run_id} not found")
        row = hit.to_pylist()[0]
        row.pop("seq", None)
        return row

    def _write_run_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        for row in rows:
            row.pop("seq", None)
        self.lake.append("runs", entities.columns(rows))
        with self._cache_lock:
            for row in rows:
                if row["run_id"] in self._runs or len(self._runs) < 100_000:
                    self._runs[row["run_id"]] = row

    def _active_run_row(self, run_id: str) -> dict[str, Any]:
        row = self._run_row(run_id)
        if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
            raise BadInput(
                f"The run {run_id} must be in the 'active' state. Current state is {row['lifecycle_stage']}."
            )
        return row

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        experiment_id = DEFAULT_EXPERIMENT_ID if experiment_id is None else str(experiment_id)
        experiment = self._experiment_row(experiment_id)
        if experiment is None:
            raise NotFound(
                f"Could not create run under experiment with ID {experiment_id} - no such experiment exists."
            )
        if experiment["lifecycle_stage"] != LifecycleStage.ACTIVE:
            raise BadInput(inactive_experiment_message(experiment_id, experiment["lifecycle_stage"]))
        tags = list(tags or [])
        for tag in tags:
            _validate_tag(tag.key, tag.value)
        tag_name = next((t.value for t in tags if t.key == MLFLOW_RUN_NAME), None)
        if run_name and tag_name and run_name != tag_name:
            raise BadInput(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{tag_name}')."
            )
        run_name = run_name or tag_name or _generate_random_name()
        if not tag_name:
            tags.append(RunTag(MLFLOW_RUN_NAME, run_name))
        run_id = uuid.uuid4().hex
        row = {
            "run_id": run_id, "experiment_id": experiment_id, "run_name": run_name,
            "user_id": user_id or "", "status": RunStatus.to_string(RunStatus.RUNNING),
            "start_time": int(start_time if start_time is not None else _now_ms()), "end_time": None,
            "lifecycle_stage": LifecycleStage.ACTIVE,
            "artifact_uri": append_to_uri_path(experiment["artifact_location"], run_id, "artifacts"),
            "deleted_time": None,
        }
        with self._cache_lock:
            self._params[run_id] = {}
        self._write_run_rows([row])
        tag_rows = {t.key: str(t.value) for t in tags}
        lsn = self.lake.append("tags", {"run_id": [run_id] * len(tag_rows), "key": list(tag_rows),
                                        "value": list(tag_rows.values()), "deleted": [False] * len(tag_rows)})
        self.lake.commit_through(lsn)  # its id may go to another process at once (a Spark executor)
        return entities.run(row, [], [], [{"key": k, "value": v} for k, v in tag_rows.items()], [], [])

    def get_run(self, run_id):
        _validate_run_id(run_id)
        view = self._current_view()  # read once: the row and the run's values come from the same view
        row = self._run_row(run_id, view)
        rix = view.run_rix(run_id) if view is not None else None
        if view is not None and rix is not None:  # its rows from the build and the tail only
            at = np.array([rix])
            data = (view.page_values(table, at, [run_id]) for table in ("params", "metrics", "tags"))
            return self._assemble_runs([row], *data)[0]
        return self._build_runs([row])[0]

    def _rows_for(self, table: str, id_column: str, entity_id: str) -> pa.Table:
        data = self.lake.read(table)
        return data.filter(pc.equal(data.column(id_column), entity_id))

    def _build_runs(self, rows: list[dict[str, Any]]) -> list[Run]:
        """Runs with their data; one run reads filtered tables, many use the grouped caches."""
        if len(rows) == 1:
            run_id = rows[0]["run_id"]
            params = latest_by(self._rows_for("params", "run_id", run_id), ["key"], ["seq"]).to_pylist()
            metrics = latest_by(self._rows_for("metrics", "run_id", run_id), ["key"],
                                ["step", "timestamp", "value"]).to_pylist()
            tags = live(latest_by(self._rows_for("tags", "run_id", run_id), ["key"], ["seq"])).to_pylist()
            inputs = latest_in_logging_order(self._rows_for("inputs", "run_id", run_id), list(INPUT_KEYS)).to_pylist()
            outputs = latest_by(self._rows_for("outputs", "run_id", run_id), ["model_id"], ["seq"]).to_pylist()
            return [entities.run(rows[0], params, metrics, tags, inputs, outputs)]
        return self._assemble_runs(rows, self.state.params(), self.state.latest_metrics(), self.state.tags())

    def _assemble_runs(self, rows: list[dict[str, Any]], params: Grouped, metrics: Grouped,
                       tags: Grouped) -> list[Run]:
        """Run entities of ``rows`` with their current params, metrics and tags (grouped by run id)."""
        ids = [r["run_id"] for r in rows]
        (param_keys, param_values), param_counts = params.gather(ids, ("key", "value"))
        metric_columns, metric_counts = metrics.gather(ids, _METRIC_FIELDS)
        (tag_keys, tag_values), tag_counts = tags.gather(ids, ("key", "value"))
        inputs, outputs = self.state.inputs(), self.state.outputs()
        runs, p, m, t = [], 0, 0, 0
        with _gc_paused():
            for row, n_params, n_metrics, n_tags in zip(rows, param_counts, metric_counts, tag_counts, strict=True):
                run_id = row["run_id"]
                runs.append(entities.run_of(
                    row,
                    list(map(Param, param_keys[p:p + n_params], param_values[p:p + n_params])),
                    list(map(Metric, *(column[m:m + n_metrics] for column in metric_columns))),
                    list(map(RunTag, tag_keys[t:t + n_tags], tag_values[t:t + n_tags])),
                    inputs.pylist(run_id) if run_id in inputs.ranges else [],
                    outputs.pylist(run_id) if run_id in outputs.ranges else [],
                ))
                p, m, t = p + n_params, m + n_metrics, t + n_tags
        return runs

    def update_run_info(self, run_id, run_status, end_time, run_name):
        row = dict(self._active_run_row(run_id))
        row["status"] = RunStatus.to_string(run_status) if isinstance(run_status, int) else run_status
        row["end_time"] = end_time
        if run_name:
            row["run_name"] = run_name
        self._write_run_rows([row])
        if run_name:
            self.lake.append("tags", {"run_id": [run_id], "key": [MLFLOW_RUN_NAME], "value": [run_name],
                                      "deleted": [False]})
        if row["status"] in _TERMINAL:
            self.lake.commit_soon()  # the WAL already holds it
        return entities.run_info(row)

    def delete_run(self, run_id):
        row = dict(self._run_row(run_id))
        row.update(lifecycle_stage=LifecycleStage.DELETED, deleted_time=_now_ms())
        self._write_run_rows([row])

    def restore_run(self, run_id):
        row = dict(self._run_row(run_id))
        row.update(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
        self._write_run_rows([row])

    def _get_deleted_runs(self, older_than=0):
        runs = self.state.runs()
        deleted = runs.filter(pc.equal(runs.column("lifecycle_stage"), LifecycleStage.DELETED))
        cutoff = _now_ms() - older_than
        return [r["run_id"] for r in deleted.to_pylist() if (r["deleted_time"] or 0) <= cutoff]

    # ================================================================== logging

    def log_metric(self, run_id, metric):
        self._log(run_id, [metric], [], [], single=True)

    def log_param(self, run_id, param):
        self._log(run_id, [], [param], [], single=True)

    def set_tag(self, run_id, tag):
        _validate_tag_name(tag.key)
        self._log(run_id, [], [], [tag], single=True)

    def delete_tag(self, run_id, key):
        self._active_run_row(run_id)
        tags = live(latest_by(self._rows_for("tags", "run_id", run_id), ["key"], ["seq"]))
        if key not in tags.column("key").to_pylist():
            raise NotFound(f"No tag with name: {key} in run with id {run_id}")
        self.lake.append("tags", {"run_id": [run_id], "key": [key], "value": [None], "deleted": [True]})

    def log_batch(self, run_id, metrics, params, tags):
        self._log(run_id, metrics, params, tags, single=False)

    def _log(self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag], *,
             single: bool) -> None:
        """``single``: one ``log_metric``/``log_param``/``set_tag`` call, whose errors name the
        bare field (``'value'``) as MLflow's stores do, not a batch position (``'metrics[0].value'``)."""
        _validate_run_id(run_id)
        metrics, params, tags = _validate_batch(metrics, params, tags, single)
        _validate_batch_log_limits(metrics, params, tags)
        _validate_param_keys_unique(params)
        row = self._active_run_row(run_id)
        if params:
            self._check_params_immutable(run_id, params)
            self.lake.append("params", {"run_id": [run_id] * len(params), "key": [p.key for p in params],
                                        "value": [str(p.value) for p in params]})
            with self._cache_lock:
                self._params.setdefault(run_id, {}).update({p.key: str(p.value) for p in params})
        if metrics:
            self.lake.append("metrics", _metric_columns(run_id, metrics))
        if tags:
            self.lake.append("tags", {"run_id": [run_id] * len(tags), "key": [t.key for t in tags],
                                      "value": [str(t.value) for t in tags], "deleted": [False] * len(tags)})
            names = [t.value for t in tags if t.key == MLFLOW_RUN_NAME]
            if names and names[-1] != row["run_name"]:
                self._write_run_rows([dict(row, run_name=names[-1])])

    def log_table(self, run_id: str, table: Any, *, kind: bulk.Kind = "auto") -> int:
        """Log a whole Arrow table / DataFrame of metrics or params (see :func:`bulk.log_table`).

        One write-ahead-log record of Arrow columns: durable on return, no Python object per row.
        """
        _validate_run_id(run_id)
        kind, data = bulk.prepare(table, kind)
        self._active_run_row(run_id)
        if data.num_rows == 0:
            return 0
        if kind == "params":
            bulk.check_params_unchanged(run_id, data, self._known_params(run_id))
            self.lake.append("params", bulk.bulk_columns(run_id, data, self.lake.stamp()))
            logged = dict(zip(data.column("key").to_pylist(), data.column("value").to_pylist(), strict=True))
            with self._cache_lock:
                self._params.setdefault(run_id, {}).update(logged)
        else:
            self.lake.append("metrics", bulk.bulk_columns(run_id, data, self.lake.stamp()))
        return data.num_rows

    def _known_params(self, run_id: str) -> dict[str, str]:
        with self._cache_lock:
            known = self._params.get(run_id)
        if known is None:
            view = self._current_view()
            rix = view.run_rix(run_id) if view is not None else None
            if view is not None and rix is not None:
                stored = view.page_values("params", np.array([rix]), [run_id]).table
            else:
                stored = latest_by(self._rows_for("params", "run_id", run_id), ["key"], ["seq"])
            known = dict(zip(stored.column("key").to_pylist(), stored.column("value").to_pylist(), strict=True))
            with self._cache_lock:
                self._params[run_id] = known
        return known

    def _check_params_immutable(self, run_id: str, params: list[Param]) -> None:
        known = self._known_params(run_id)
        for param in params:
            old = known.get(param.key)
            if old is not None and old != str(param.value):
                raise BadInput(
                    f"Changing param values is not allowed. Param with key='{param.key}' was already logged "
                    f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{param.value}'."
                )

    def log_inputs(self, run_id, datasets=None, models=None):
        _validate_run_id(run_id)
        self._active_run_row(run_id)
        if datasets:
            _validate_dataset_inputs(datasets)
            self.lake.append("inputs", entities.dataset_input_columns(run_id, datasets, MLFLOW_DATASET_CONTEXT))
        if models:
            ids = [m.model_id for m in models]
            blank = [None] * len(ids)
            self.lake.append("inputs", {"run_id": [run_id] * len(ids), "kind": ["model"] * len(ids),
                                        "name": blank, "digest": blank, "source_type": blank, "source": blank,
                                        "schema": blank, "profile": blank, "tags": blank, "context": blank,
                                        "model_id": ids})

    def log_outputs(self, run_id, models):
        _validate_run_id(run_id)
        self._active_run_row(run_id)
        for model in models:
            self.get_logged_model(model.model_id)
        self.lake.append("outputs", {"run_id": [run_id] * len(models), "model_id": [m.model_id for m in models],
                                     "step": [int(m.step) for m in models]})

    # ================================================================== metric history

    def _history(self, run_id: str, metric_key: str) -> pa.Table:
        self._run_row(run_id)
        # The last history asked for is kept until the metrics change: MLflow's client pages
        # through a long history in several calls, which would each filter and sort again.
        version, data = self.lake.read_keyed("metrics")
        cached = self._last_history
        if cached is not None and cached[:3] == (version, run_id, metric_key):
            return cached[3]
        rows = data.filter(pc.and_(pc.equal(data.column("run_id"), run_id), pc.equal(data.column("key"), metric_key)))
        # MLflow's SQL store orders history by (timestamp, step, value); FileStore by log order
        order = [("timestamp", "ascending"), ("step", "ascending"), ("value", "ascending")]
        # MLflow 3's log_model logs the run's latest metrics again with the model's id; MLflow's
        # stores keep a (timestamp, step, value) point once per run, so the copy is dropped here.
        rows = drop_repeats(rows.take(pc.sort_indices(rows, sort_keys=order)), ["timestamp", "step", "value"])
        self._last_history = (version, run_id, metric_key, rows)
        return rows

    def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
        rows = self._history(run_id, metric_key)
        page, token = search.paginate(rows, page_token, max_results)
        return PagedList(_metric_entities(page), token)

    def get_metric_history_bulk_interval_from_steps(self, run_id, metric_key, steps, max_results):
        rows = self._history(run_id, metric_key)
        rows = rows.filter(pc.is_in(rows.column("step"), value_set=pa.array(list(steps), pa.int64())))
        rows = rows.take(pc.sort_indices(rows, sort_keys=[("step", "ascending"), ("timestamp", "ascending")]))
        rows = rows.slice(0, max_results)
        return [MetricWithRunId(entities.metric(m), run_id) for m in rows.to_pylist()]

    # ================================================================== search

    def _search_runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        if not isinstance(max_results, int) or max_results < 1:
            raise BadInput(f"max_results must be a positive integer, got {max_results!r}")
        view = self._current_view()
        if view is not None:
            return self._search_current(view, [str(e) for e in experiment_ids], filter_string, run_view_type,
                                        max_results, order_by, page_token)
        runs = self.state.runs()
        runs = runs.filter(pc.is_in(runs.column("experiment_id"),
                                    value_set=pa.array([str(e) for e in experiment_ids], pa.string())))
        runs = _by_view_type(runs, run_view_type)
        values = search.StateValues(self.state)
        runs = search.filter_runs(values, runs, filter_string)
        runs = search.order_runs(values, runs, order_by)
        page, token = search.paginate(runs, page_token, max_results)
        rows = page.to_pylist()
        for row in rows:
            row.pop("seq", None)
        return (self._build_runs(rows) if rows else []), token

    def _current_view(self) -> current_search.CurrentView | None:
        """The root's current-state build merged with its tail, or None when it has none."""
        built = current.load(self.location, known=self._current_state)
        if built is None:
            return None
        self._current_state = built
        keys, tails = [], {}
        for table in current_search.TAIL_TABLES:
            key, rows = self.lake.read_tail(table, built.covered.get(table, frozenset()))
            keys.append(key)
            tails[table] = rows
        cache_key = (built.build, tuple(keys))
        with self._cache_lock:
            cached = self._current_cache
        if cached is not None and cached[0] == cache_key:
            return cached[1]
        view = current_search.CurrentView(built, tails, self.state)
        with self._cache_lock:
            self._current_cache = (cache_key, view)
        return view

    def _search_current(self, view: current_search.CurrentView, experiment_ids: list[str], filter_string: str | None,
                        run_view_type: int, max_results: int, order_by: list[str] | None,
                        page_token: str | None) -> tuple[list[Run], str | None]:
        """Search the current-state build and its tail; only the page's runs are read whole."""
        runs = view.candidates(experiment_ids, run_view_type, current_search.page_columns(filter_string, order_by))
        runs = search.filter_runs(view, runs, filter_string)
        runs = search.order_runs(view, runs, order_by)
        page, token = search.paginate(runs, page_token, max_results)
        if page.num_rows == 0:
            return [], token
        rix = page.column("rix").to_numpy()
        rows = view.page_rows(rix)
        ids = [r["run_id"] for r in rows]
        return self._assemble_runs(rows, view.page_values("params", rix, ids), view.page_values("metrics", rix, ids),
                                   view.page_values("tags", rix, ids)), token

    # ================================================================== lifecycle

    def flush(self) -> None:
        """Commit everything this process has logged (normally done in the background)."""
        self.lake.flush()

    def flush_async_logging(self):
        super().flush_async_logging()
        self.lake.flush()


# Names MLflow's validator has accepted (as metric, param and tag key): a batch made only of
# these, with plain values, passes MLflow's checks, so they need not run per value again.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 100_000


def _validate_batch(metrics: list[Metric], params: list[Param], tags: list[RunTag],
                    single: bool = False) -> tuple[list, list, list]:
    """MLflow's batch validation, skipped when a cheap check proves every value would pass it.

    Anything the cheap check is unsure of goes through MLflow's own validator, so the rules,
    truncation and error messages stay exactly MLflow's.
    """
    names = _VALID_NAMES
    plain = all(
        type(m.value) in (float, int) and type(m.timestamp) is int and m.timestamp >= 0
        and type(m.step) is int and m.key in names
        for m in metrics
    ) and all(
        type(p.value) is str and len(p.value) <= MAX_PARAM_VAL_LENGTH and p.key in names for p in params
    ) and all(
        type(t.value) is str and len(t.value) <= MAX_TAG_VAL_LENGTH and t.key in names for t in tags
    )
    if plain:
        return metrics, params, tags
    if single:
        for m in metrics:
            _validate_metric(m.key, m.value, m.timestamp, m.step)
        params = [_validate_param(p.key, p.value) for p in params]
        tags = [_validate_tag(t.key, t.value) for t in tags]
    else:
        metrics, params, tags = _validate_batch_log_data(metrics, params, tags)
    if len(names) < _VALID_NAMES_MAX:
        logged: list[Metric | Param | RunTag] = [*metrics, *params, *tags]
        for entity in logged:
            if type(entity.key) is str and len(entity.key) <= MAX_ENTITY_KEY_LENGTH:
                names.add(entity.key)
    return metrics, params, tags


_METRIC_FIELDS = ("key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest", "run_id")


def _metric_entities(table: pa.Table) -> list[Metric]:
    """Run-history ``Metric`` objects (key, value, timestamp, step: what MLflow's stores keep
    per point), built from whole columns: per-row dicts cost several times more."""
    columns = [table.column(name).to_pylist() for name in ("key", "value", "timestamp", "step")]
    with _gc_paused():
        return list(map(Metric, *columns))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Build many small objects without the collector rescanning the whole heap meanwhile.

    Allocating 100,000 entities triggers several full collections, each walking every live
    object of the process (MLflow alone holds ~1M): that tripled the cost of a long history.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _experiment_rows_by_id(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row["experiment_id"]: row for row in latest_rows("experiments", table).to_pylist()}


def _by_view_type(table: pa.Table, view_type: int) -> pa.Table:
    if view_type == ViewType.ALL or table.num_rows == 0:
        return table
    stage = LifecycleStage.ACTIVE if view_type == ViewType.ACTIVE_ONLY else LifecycleStage.DELETED
    return table.filter(pc.equal(table.column("lifecycle_stage"), stage))


def _metric_columns(run_id: str, metrics: list[Metric]) -> dict[str, list[Any]]:
    return {
        "run_id": [run_id] * len(metrics),
        "key": [m.key for m in metrics],
        "value": [float(m.value) for m in metrics],
        "timestamp": [int(m.timestamp) for m in metrics],
        "step": [int(m.step or 0) for m in metrics],
        "model_id": [m.model_id for m in metrics],
        "dataset_name": [m.dataset_name for m in metrics],
        "dataset_digest": [m.dataset_digest for m in metrics],
    }

