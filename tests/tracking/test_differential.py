"""Differential tests: the whole client API on our store and on MLflow's SQLite store.

Each case is a call sequence run against both stores (one of each per module: creating a
SQLite store runs MLflow's migrations, which is slow). The case's result, or its error code
and message, must be the same on both once what legitimately differs is masked. Everything
we mask or expect to differ is listed in ``MASKED`` and ``DIFFERENCES`` below, with the reason.
"""

from __future__ import annotations

import enum
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from mlflow.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.entities._mlflow_object import _MlflowObject
from mlflow.entities.logged_model_parameter import LoggedModelParameter
from mlflow.entities.logged_model_tag import LoggedModelTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.entities.paged_list import PagedList

from sparkml_ops.lake import Lake, parse_root
from sparkml_ops.tracking.store import DeltaTrackingStore

# ------------------------------------------------------------------ what we mask, and why
MASKED = {
    # Ids: MLflow's SQL store numbers experiments 1, 2, 3 ...; ours derives them from a hash of the
    # name, so that processes on many machines creating one experiment at once agree on its id
    # without a database. Run and logged-model ids are random uuids on both. Each id is
    # replaced by its kind and creation order within the case.
    "ids": "experiment, run and logged-model ids",
    # Wall-clock times the store stamps itself (times the caller passes are compared).
    "times": ("creation_time", "last_update_time", "creation_timestamp", "last_updated_timestamp",
              "deleted_time"),
    # Where artifacts live: each store's own artifact root (a directory vs the Delta root).
    "artifact root": "each store's default artifact root",
}

ID_KEYS = {"experiment_id", "run_id", "model_id", "source_run_id"}

# Where MLflow's SQL store answers differently from us on purpose, what its answer is mapped
# to before comparing (reference side only), and why.
SQL_ERROR_TAIL = re.compile(r" Error: .*", re.DOTALL)
SQL_MAX_FLOAT = 1.7976931348623157e308
REFERENCE_MAPPINGS = {
    "error tail": "a duplicate name's message ends with the database driver's constraint error; we have no "
                  "database, so the message ends after 'already exists.'",
    "infinity": "SQL databases cannot store infinity, so the SQL store clamps ±inf metrics to ±max float; "
                "we keep the value as logged, as MLflow's FileStore does",
    "model metrics": "the SQL store answers metrics=None for a logged model without metrics; we answer [] "
                     "because MLflow's own dataset filter (search_logged_models in the server) iterates it",
}

# Cases whose outcome differs on purpose: case -> (reason, our outcome from the reference's).
DIFFERENCES: dict[str, tuple[str, Any]] = {
    "experiment name of a deleted experiment": (
        "we say which experiment holds the name (it is deleted) and how to free it; the SQL store "
        "only repeats the database's constraint error",
        lambda ref: (ref[0], ref[1], ref[2] + " It is deleted: restore it or choose another name."),
    ),
    "rename to a taken name": (
        "the SQL store lets the database's constraint error through as BAD_REQUEST (with the SQL "
        "statement); we answer as create_experiment does",
        lambda ref: ("error", "RESOURCE_ALREADY_EXISTS", "Experiment(name=taken) already exists."),
    ),
}


# ------------------------------------------------------------------ one side of the comparison
@dataclass
class Side:
    store: Any
    artifact_root: str
    names: dict[str, str] = field(default_factory=dict)  # real id -> placeholder (this case)
    prefix: str = ""
    reference: bool = False

    def remember(self, kind: str, real: str) -> str:
        self.names.setdefault(str(real), f"<{kind}{sum(v.startswith(f'<{kind}') for v in self.names.values()) + 1}>")
        return real

    def experiment(self, name: str, **kwargs: Any) -> str:
        return self.remember("exp", self.store.create_experiment(f"{self.prefix}{name}", **kwargs))

    def run(self, experiment_id: str, name: str = "r", tags: list[RunTag] | None = None) -> str:
        start = 1_000 + len(self.names)  # distinct: search orders by start time, then by (random) id
        run = self.store.create_run(experiment_id, "alice", start, tags or [], name)
        return self.remember("run", run.info.run_id)

    def model(self, experiment_id: str, **kwargs: Any) -> str:
        model = self.store.create_logged_model(experiment_id, **kwargs)
        return self.remember("model", model.model_id)


def _mask_text(text: str, side: Side, key: str | None = None) -> str:
    if text in side.names:  # SQL's experiment "1" may also be a plain value: whole ids only as ids
        return side.names[text] if key in ID_KEYS or len(text) >= 8 else text
    text = text.replace(side.artifact_root, "<root>")
    if side.prefix:
        text = text.replace(side.prefix, "")
    for real, placeholder in side.names.items():
        text = re.sub(rf"(?<![\w\[-]){re.escape(real)}(?![\w\]-])", placeholder, text)
    return text


def plain(value: Any, side: Side, key: str | None = None) -> Any:
    """An entity (or list of them) as plain data with ids, store times and roots masked."""
    if isinstance(value, PagedList):
        return {"items": plain(list(value), side), "more": value.token is not None}
    if isinstance(value, _MlflowObject):
        value = dict(value)
        value.pop("model_uri", None)  # derived from model_id
    if isinstance(value, dict):
        if side.reference and "model_id" in value and "metrics" in value and value["metrics"] is None:
            value = dict(value, metrics=[])  # REFERENCE_MAPPINGS["model metrics"]
        return {k: "<time>" if k in MASKED["times"] and v is not None else plain(v, side, k)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, side) for v in value]
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if side.reference and isinstance(value, float) and abs(value) == SQL_MAX_FLOAT:
        return math.copysign(math.inf, value)  # REFERENCE_MAPPINGS["infinity"]
    if isinstance(value, str):
        return _mask_text(value, side, key)
    return value


def outcome(case, side: Side) -> tuple:
    try:
        return ("ok", plain(case(side), side))
    except MlflowException as exc:
        message = SQL_ERROR_TAIL.sub("", exc.message)  # REFERENCE_MAPPINGS["error tail"]
        return ("error", exc.error_code, _mask_text(message, side))


# ------------------------------------------------------------------ call sequences
def _dataset(name: str, digest: str, context: str = "training") -> DatasetInput:
    return DatasetInput(Dataset(name, digest, "local", f"file:///data/{name}", '{"a": "int"}', '{"rows": 3}'),
                        [InputTag("mlflow.data.context", context)])


def _experiment_lifecycle(s: Side):
    e = s.experiment("life", tags=[ExperimentTag("team", "ads")])
    s.store.set_experiment_tag(e, ExperimentTag("tier", "1"))  # "1": also the SQL store's first id
    s.store.delete_experiment_tag(e, "team")
    s.store.rename_experiment(e, f"{s.prefix}life2")
    seen = [s.store.get_experiment(e), s.store.get_experiment_by_name(f"{s.prefix}life2"),
            s.store.get_experiment_by_name(f"{s.prefix}life")]
    s.store.delete_experiment(e)
    seen.append(s.store.get_experiment(e))
    seen.append(s.store.search_experiments(ViewType.DELETED_ONLY, filter_string=f"name LIKE '{s.prefix}%'"))
    s.store.restore_experiment(e)
    seen.append(s.store.search_experiments(ViewType.ALL, filter_string=f"name LIKE '{s.prefix}%'"))
    return seen


def _runs_and_data(s: Side):
    e = s.experiment("data")
    r = s.run(e, "first", [RunTag("owner", "bob")])
    s.store.log_param(r, Param("lr", "0.1"))
    s.store.log_metric(r, Metric("loss", 0.5, 10, 0))
    s.store.log_metric(r, Metric("loss", 0.25, 20, 1))
    s.store.log_metric(r, Metric("loss", 0.25, 20, 1))  # an exact repeat is kept once
    s.store.log_metric(r, Metric("odd", float("nan"), 30, 0))
    s.store.log_metric(r, Metric("big", math.inf, 30, 0))
    s.store.set_tag(r, RunTag("stage", "dev"))
    s.store.set_tag(r, RunTag("stage", "prod"))
    s.store.log_batch(r, [Metric("acc", 0.9, 40, 2), Metric("acc", 0.8, 41, 3)], [Param("depth", "3")],
                      [RunTag("mlflow.runName", "renamed")])
    s.store.delete_tag(r, "owner")
    return [s.store.get_run(r), s.store.get_metric_history(r, "loss"), s.store.get_metric_history(r, "acc"),
            s.store.get_metric_history(r, "odd"), s.store.get_metric_history(r, "none")]


def _run_lifecycle(s: Side):
    e = s.experiment("runlife")
    r1, r2 = s.run(e, "a"), s.run(e, "b")
    s.store.update_run_info(r1, RunStatus.FINISHED, 5_000, "a-done")
    s.store.delete_run(r2)
    seen = [s.store.get_run(r1).info, s.store.get_run(r2).info,
            s.store.search_runs([e], None, ViewType.ACTIVE_ONLY),
            s.store.search_runs([e], None, ViewType.DELETED_ONLY)]
    s.store.restore_run(r2)
    seen.append(s.store.search_runs([e], "attributes.run_name = 'b'", ViewType.ALL))
    s.store.delete_experiment(e)
    seen.append(s.store.search_runs([e], None, ViewType.ALL))
    return seen


def _paged_search(s: Side):
    e = s.experiment("paged")
    for i in range(5):
        r = s.run(e, f"r{i}")
        s.store.log_metric(r, Metric("score", float(i % 3), 1, 0))
    first = s.store.search_runs([e], "metrics.score >= 1", ViewType.ALL, max_results=2,
                                order_by=["metrics.score DESC", "attributes.run_name ASC"])
    second = s.store.search_runs([e], "metrics.score >= 1", ViewType.ALL, max_results=2,
                                 order_by=["metrics.score DESC", "attributes.run_name ASC"], page_token=first.token)
    return [[r.info.run_name for r in first], [r.info.run_name for r in second], second.token is None]


def _datasets(s: Side):
    e = s.experiment("datasets")
    r = s.run(e)
    s.store.log_inputs(r, [_dataset("train", "d2"), _dataset("eval", "d1", "eval")])
    s.store.log_inputs(r, [_dataset("test", "d0", "test")])
    s.store.log_inputs(r, [_dataset("train", "d2")])  # again: keeps its place
    return s.store.get_run(r).inputs


def _logged_models(s: Side):
    e = s.experiment("models")
    r = s.run(e)
    m = s.model(e, name="clf", source_run_id=r, tags=[LoggedModelTag("k", "v")],
                params=[LoggedModelParameter("alpha", "0.5")], model_type="sklearn")
    s.store.log_logged_model_params(m, [LoggedModelParameter("beta", "2")])
    s.store.set_logged_model_tags(m, [LoggedModelTag("k", "v2"), LoggedModelTag("x", "y")])
    s.store.delete_logged_model_tag(m, "x")
    s.store.log_batch(r, [Metric("auc", 0.75, 100, 3, model_id=m, dataset_name="eval", dataset_digest="d1")], [], [])
    s.store.log_outputs(r, [LoggedModelOutput(m, 3)])
    s.store.finalize_logged_model(m, LoggedModelStatus.READY)
    other = s.model(e, name="other")
    s.store.log_inputs(r, models=[LoggedModelInput(other)])
    seen = [s.store.get_logged_model(m), s.store.get_run(r),
            s.store.search_logged_models([e], order_by=[{"field_name": "name", "ascending": True}]),
            s.store.search_logged_models([e], filter_string="metrics.auc > 0.5"),
            s.store.search_logged_models([e], datasets=[{"dataset_name": "eval"}]),
            s.store.search_logged_models([e], datasets=[{"dataset_name": "train"}])]
    s.store.delete_logged_model(other)
    seen.append(s.store.search_logged_models([e]))
    return seen


def _artifact_locations(s: Side):
    e = s.experiment("where", artifact_location="file:///tmp/i15-parity/arts?driver=x#f")
    r = s.run(e)
    m = s.model(e, name="m")
    return [s.store.get_experiment(e).artifact_location, s.store.get_run(r).info.artifact_uri,
            s.store.get_logged_model(m).artifact_location]


def _default_locations(s: Side):
    e = s.experiment("default-where")
    r = s.run(e)
    return [s.store.get_experiment(e).artifact_location, s.store.get_run(r).info.artifact_uri,
            s.store.get_logged_model(s.model(e, name="m")).artifact_location]


def _relative_location(s: Side):
    e = s.experiment("relative", artifact_location="rel/arts")
    return s.store.get_experiment(e).artifact_location


def _artifacts(s: Side, tmp: str):
    e = s.experiment("artifacts")
    r = s.run(e)
    repo = get_artifact_repository(s.store.get_run(r).info.artifact_uri)
    local = os.path.join(tmp, "notes.txt")
    with open(local, "w") as handle:
        handle.write("hello")
    repo.log_artifact(local, "docs")
    repo.log_artifact(local)
    listed = [repo.list_artifacts(), repo.list_artifacts("docs"), repo.list_artifacts("nothing")]
    target = os.path.join(tmp, f"dl-{type(s.store).__name__}")
    os.makedirs(target)
    with open(repo.download_artifacts("docs/notes.txt", target)) as handle:
        listed.append(handle.read())
    return [[(f.path, f.is_dir, f.file_size) for f in group] for group in listed[:3]] + [listed[3]]


def _bad(call):
    return lambda s: call(s, s.run(s.experiment("bad")))


CASES: dict[str, Any] = {
    "experiment lifecycle": _experiment_lifecycle,
    "runs, params, metrics, tags, batch": _runs_and_data,
    "run lifecycle": _run_lifecycle,
    "paged run search": _paged_search,
    "dataset inputs": _datasets,
    "logged models": _logged_models,
    "artifact location with query": _artifact_locations,
    "default artifact locations": _default_locations,
    "relative artifact location": _relative_location,
    # validation errors: code and message
    "metric value not a number": _bad(lambda s, r: s.store.log_metric(r, Metric("m", "x", 1, 0))),
    "metric value None": _bad(lambda s, r: s.store.log_metric(r, Metric("m", None, 1, 0))),
    "metric timestamp negative": _bad(lambda s, r: s.store.log_metric(r, Metric("m", 1.0, -1, 0))),
    "batch metric not a number": _bad(lambda s, r: s.store.log_batch(r, [Metric("ok", 1.0, 1, 0),
                                                                          Metric("m", "x", 1, 0)], [], [])),
    "param changed": _bad(lambda s, r: (s.store.log_param(r, Param("p", "1")), s.store.log_param(r, Param("p", "2")))),
    "param key too long": _bad(lambda s, r: s.store.log_param(r, Param("k" * 251, "v"))),
    "tag key with ..": _bad(lambda s, r: s.store.set_tag(r, RunTag("../x", "v"))),
    "duplicate param keys in batch": _bad(
        lambda s, r: s.store.log_batch(r, [], [Param("a", "1"), Param("a", "2")], [])),
    "too many params in batch": _bad(lambda s, r: s.store.log_batch(r, [], [Param(f"k{i}", "v") for i in range(101)],
                                                                    [])),
    "log to deleted run": _bad(lambda s, r: (s.store.delete_run(r), s.store.log_param(r, Param("a", "b")))),
    "delete missing run tag": _bad(lambda s, r: s.store.delete_tag(r, "nope")),
    "run_name clashes with tag": lambda s: s.store.create_run(
        s.experiment("clash"), "u", 1, [RunTag("mlflow.runName", "a")], "b"),
    "unknown run": lambda s: s.store.get_run("f" * 32),
    "unknown experiment": lambda s: s.store.get_experiment("987654321"),
    "unknown logged model": lambda s: s.store.get_logged_model("m-" + "0" * 32),
    "experiment name taken": lambda s: (s.experiment("twice"), s.experiment("twice")),
    "experiment name of a deleted experiment": lambda s: (
        s.store.delete_experiment(s.experiment("gone")), s.experiment("gone")),
    "empty experiment name": lambda s: s.store.create_experiment(""),
    "delete missing experiment tag": lambda s: s.store.delete_experiment_tag(s.experiment("notag"), "nope"),
    "delete missing logged model tag": lambda s: s.store.delete_logged_model_tag(s.model("0", name="x"), "nope"),
    "logged model in deleted experiment": lambda s: s.model(_deleted_experiment(s), name="x"),
    "run in deleted experiment": lambda s: s.run(_deleted_experiment(s)),
    "tag on deleted experiment": lambda s: s.store.set_experiment_tag(_deleted_experiment(s), ExperimentTag("a", "b")),
    "rename deleted experiment": lambda s: s.store.rename_experiment(_deleted_experiment(s), f"{s.prefix}new"),
    "delete deleted experiment": lambda s: s.store.delete_experiment(_deleted_experiment(s)),
    "restore active experiment": lambda s: s.store.restore_experiment(s.experiment("active")),
    "rename to a taken name": lambda s: (s.experiment("taken"),
                                         s.store.rename_experiment(s.experiment("mine"), f"{s.prefix}taken")),
    "update deleted run": _bad(lambda s, r: (s.store.delete_run(r),
                                             s.store.update_run_info(r, RunStatus.FINISHED, 5, None))),
    "inputs to deleted run": _bad(lambda s, r: (s.store.delete_run(r), s.store.log_inputs(r, [_dataset("d", "x")]))),
    "dataset name too long": _bad(lambda s, r: s.store.log_inputs(r, [_dataset("d" * 501, "x")])),
    "metric history paging": _bad(lambda s, r: (
        s.store.log_batch(r, [Metric("h", float(i), 10 + i, i) for i in range(7)], [], []),
        [list(page) for page in _pages(lambda t: s.store.get_metric_history(r, "h", max_results=3, page_token=t))])),
    "experiment search paging": lambda s: (
        [s.experiment(f"page-{i}") for i in range(5)],
        [[e.name for e in page] for page in _pages(lambda t: s.store.search_experiments(
            ViewType.ALL, max_results=2, filter_string=f"name LIKE '{s.prefix}page-%'", order_by=["name DESC"],
            page_token=t))])[1],
    "deleted logged model": lambda s: _deleted_model_calls(s),
    "record logged model": _bad(lambda s, r: (s.store.record_logged_model(r, _mlmodel(r)),
                                              s.store.record_logged_model(r, _mlmodel(r)),
                                              s.store.get_run(r).data.tags)[2]),
}


def _deleted_experiment(s: Side) -> str:
    e = s.experiment("deleted")
    s.store.delete_experiment(e)
    return e


def _pages(fetch) -> list[Any]:
    pages, token = [fetch(None)], None
    while (token := pages[-1].token) is not None:
        pages.append(fetch(token))
    return pages


def _outcomes(*calls) -> list[Any]:
    """Each call's result or error, so one case can compare several refusals."""
    results = []
    for call in calls:
        try:
            results.append(("ok", call()))
        except MlflowException as exc:
            results.append(("error", exc.error_code, exc.message))
    return results


def _deleted_model_calls(s: Side) -> list[Any]:
    m = s.model("0", name="soon-gone")
    s.store.delete_logged_model(m)
    return _outcomes(lambda: s.store.get_logged_model(m),
                     lambda: s.store.set_logged_model_tags(m, [LoggedModelTag("a", "b")]),
                     lambda: s.store.log_logged_model_params(m, [LoggedModelParameter("p", "1")]),
                     lambda: s.store.finalize_logged_model(m, LoggedModelStatus.READY).status,
                     lambda: s.store.delete_logged_model(m))


def _mlmodel(run_id: str):
    from mlflow.models import Model

    model = Model(run_id=run_id, artifact_path="model", utc_time_created="2026-01-01 00:00:00.000000",
                  model_uuid="fixed", flavors={"python_function": {"loader_module": "x"}})
    return model


# ------------------------------------------------------------------ fixtures and the test
@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    base = tmp_path_factory.mktemp("differential")
    uri = f"delta:{base / 'lake'}"
    ours = DeltaTrackingStore(uri)
    reference = SqlAlchemyStore(f"sqlite:///{base / 'mlflow.db'}", str(base / "sql-artifacts"))
    yield ours, reference, base
    Lake.opened(parse_root(uri)).close()


def _pair(sides, name: str) -> tuple[Side, Side]:
    ours, reference, _ = sides
    prefix = re.sub(r"\W", "-", name) + "/"
    return (Side(ours, ours._artifact_root, prefix=prefix),
            Side(reference, reference.artifact_root_uri, prefix=prefix, reference=True))


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_mlflow_sqlite_store(sides, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative artifact locations resolve against the same directory
    ours, reference = _pair(sides, name)
    expected = outcome(CASES[name], reference)
    got = outcome(CASES[name], ours)
    if name in DIFFERENCES:
        expected = DIFFERENCES[name][1](expected)
    assert got == expected


def test_artifacts_same_as_mlflow_sqlite_store(sides, tmp_path):
    ours, reference = _pair(sides, "artifacts")
    expected = outcome(lambda s: _artifacts(s, str(tmp_path)), reference)
    assert outcome(lambda s: _artifacts(s, str(tmp_path)), ours) == expected
    assert expected[0] == "ok"
