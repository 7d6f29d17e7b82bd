"""Search semantics checked against MLflow's own FileStore on identical data.

The same sequence of calls builds the same runs in both stores (run ids are pinned so that
MLflow's ``run_id`` tie-break orders both alike); every filter and ``order_by`` in the
tables below must then return the same run ids in the same order, page by page.

FileStore re-reads every run from disk per search (~200 ms here), so the big tables run
FileStore's own search pipeline (``SearchUtils.filter`` -> ``sort`` -> ``paginate``, what
``FileStore._search_runs`` does) over the runs it loaded once; the smaller tests call
``FileStore.search_runs`` itself, which also checks that shortcut.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from mlflow.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils

from sparkml_ops.lake import Lake, parse_root
from sparkml_ops.lake.maintenance import build_current_state
from sparkml_ops.tracking.store import DeltaTrackingStore

N_RUNS = 40
NAMES = ["alpha", "Alpha", "beta_1", "beta-2", "gamma%", "delta", "ALPHA-x"]
USERS = ["alice", "bob", "Carol", "alice"]
LRS = ["0.1", "0.01", "10", "2", "1e-3", None]
MODELS = ["linear", "Linear", "tree", None]
TEAMS = ["ads", "search", "Ads", None]
DATASETS = [("train", "abc123", "training"), ("eval", "abd999", "eval"), ("train", "ff0011", "training")]


@dataclass
class Pair:
    """Our store and MLflow's FileStore holding the same data."""

    ours: DeltaTrackingStore
    ref: object
    experiments: dict[str, tuple[str, str]]  # name -> (our id, reference id)
    run_ids: list[str]
    ref_runs: list[Run]  # every run as FileStore loads it, for the in-memory reference search

    def ids(self, *names: str) -> tuple[list[str], list[str]]:
        return [self.experiments[n][0] for n in names], [self.experiments[n][1] for n in names]


def _populate(store, seed: int, patch, midway=None) -> tuple[dict[str, str], list[str]]:
    """One deterministic sequence of store calls; the same seed gives the same data.

    ``midway()`` runs after half the runs (ours: build the current-state tables there, so the
    second half, and its changes to runs of the first half, are the tail a search merges in).
    """
    rng = random.Random(seed)
    experiments = {
        "exp-a": store.create_experiment("exp-a", tags=[ExperimentTag("team", "ads")]),
        "exp-b": store.create_experiment("exp-b"),
    }
    run_ids = []
    for i in range(N_RUNS):
        if i == N_RUNS // 2 and midway is not None:
            midway()
        if i >= N_RUNS // 2:
            _change_earlier_run(store, rng, run_ids[i - N_RUNS // 2])
        experiment = "exp-a" if i % 5 else "exp-b"
        start = 1_000 + 10 * rng.randrange(8)  # many start_time ties
        fixed = uuid.UUID(int=rng.getrandbits(128))
        patch.setattr(uuid, "uuid4", lambda fixed=fixed: fixed)
        try:
            run = store.create_run(experiments[experiment], rng.choice(USERS), start, [], rng.choice(NAMES))
        finally:
            patch.undo()
        run_id = run.info.run_id
        run_ids.append(run_id)
        params = [Param("i", str(i))]
        for key, choices in (("lr", LRS), ("model", MODELS)):
            value = rng.choice(choices)
            if value is not None:
                params.append(Param(key, value))
        metrics = []
        roll = rng.random()
        if roll < 0.15:
            loss = float("nan")
        elif roll < 0.3:
            loss = None
        else:
            loss = rng.choice([0.1, 0.25, 0.5, 0.75, 0.9])  # ties, for ordering
        if loss is not None:
            metrics.append(Metric("loss", loss + 5, 1, 0))  # superseded by a later step
            metrics.append(Metric("loss", loss, 2, 3))
        metrics.append(Metric("acc", rng.choice([0.1, 0.5, 0.5, 0.9, float("inf"), float("-inf")]), 3, 0))
        tags = []
        team = rng.choice(TEAMS)
        if team is not None:
            tags.append(RunTag("team", team))
        if rng.random() < 0.5:
            tags.append(RunTag("weird key", rng.choice(["x y", "z"])))
        if rng.random() < 0.5:
            tags.append(RunTag("a.b", rng.choice(["za", "zz", "q"])))
        store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        for name, digest, context in rng.sample(DATASETS, rng.randrange(3)):
            dataset = Dataset(name=name, digest=digest, source_type="local", source='{"uri": "x"}')
            store.log_inputs(run_id, [DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, context)])])
        status = rng.choice(["FINISHED", "FINISHED", "FAILED", "KILLED", "RUNNING"])
        if status != "RUNNING":
            store.update_run_info(run_id, RunStatus.from_string(status), start + rng.randrange(3) * 500, None)
        if rng.random() < 0.15:
            store.delete_run(run_id)
    return experiments, run_ids


def _change_earlier_run(store, rng: random.Random, run_id: str) -> None:
    """Later changes to a run (tags set or deleted, newer and older metric points, deletion, restore)."""
    run = store.get_run(run_id)
    if run.info.lifecycle_stage != "active":
        if rng.random() < 0.5:
            store.restore_run(run_id)
        return
    roll = rng.random()
    if roll < 0.25:
        store.set_tag(run_id, RunTag("team", rng.choice(["ads", "late", "Ads"])))
    elif roll < 0.4 and "team" in run.data.tags:
        store.delete_tag(run_id, "team")
    elif roll < 0.6:
        store.log_metric(run_id, Metric("loss", rng.choice([0.05, 0.6, float("nan")]), 9, 3))  # same step, later
    elif roll < 0.7:
        store.log_metric(run_id, Metric("loss", 0.95, 1, 1))  # an older step: the latest stays
    elif roll < 0.8:
        store.delete_run(run_id)
    elif roll < 0.9:
        store.log_param(run_id, Param("late", str(rng.randrange(3))))


@pytest.fixture(scope="module", params=["in-memory", "current-state"])
def pair(tmp_path_factory, request) -> Iterator[Pair]:
    """``current-state``: our root's current-state tables were built after half the runs; the
    rest of the data (and changes to runs of the first half) is the tail searches merge in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.store.tracking.file_store import FileStore

        base = tmp_path_factory.mktemp("search")
        ref = FileStore(str(base / "mlruns"), str(base / "mlruns-artifacts"))
        uri = f"delta:{base / 'lake'}"
        ours = DeltaTrackingStore(uri)
        midway = None
        if request.param == "current-state":
            def midway() -> None:
                ours.flush()
                assert build_current_state(ours.location) is not None
        with pytest.MonkeyPatch.context() as id_patch:
            ref_experiments, ref_runs = _populate(ref, 11, id_patch)
            our_experiments, our_runs = _populate(ours, 11, id_patch, midway)
        assert ref_runs == our_runs
        ours.flush()
        if request.param == "current-state":
            view = ours._current_view()
            assert view is not None and view.n == N_RUNS // 2 and view.tail_runs.num_rows > N_RUNS // 2
        experiments = {name: (our_experiments[name], ref_experiments[name]) for name in our_experiments}
        ref_runs = list(ref.search_runs(list(ref_experiments.values()), None, ViewType.ALL, 1000))
        assert len(ref_runs) == N_RUNS
        yield Pair(ours, ref, experiments, our_runs, ref_runs)
        Lake.opened(parse_root(uri)).close()


def _search(store, experiment_ids, filter_string, order_by=None, view=ViewType.ACTIVE_ONLY, page_size=1000):
    """All matching run ids, fetched page by page."""
    ids, token = [], None
    while True:
        runs = store.search_runs(experiment_ids, filter_string, view, page_size, order_by, token)
        ids += [r.info.run_id for r in runs]
        token = runs.token
        if not token:
            return ids


def _reference_search(pair: Pair, experiment_ids, filter_string, order_by, view, page_size):
    """FileStore._search_runs on the preloaded runs: same filter, sort and paging code."""
    stages = {ViewType.ACTIVE_ONLY: {"active"}, ViewType.DELETED_ONLY: {"deleted"}}.get(view, {"active", "deleted"})
    runs = [r for r in pair.ref_runs if r.info.experiment_id in experiment_ids and r.info.lifecycle_stage in stages]
    ordered = SearchUtils.sort(SearchUtils.filter(runs, filter_string), order_by)
    ids, token = [], None
    while True:
        page, token = SearchUtils.paginate(ordered, token, page_size)
        ids += [r.info.run_id for r in page]
        if not token:
            return ids


def _outcome(search, *args):
    try:
        return search(*args)
    except MlflowException as exc:
        return ("error", exc.error_code)


def _mismatches(pair: Pair, cases, page_size: int = 1000, view=ViewType.ACTIVE_ONLY) -> list:
    ours_ids, ref_ids = pair.ids("exp-a", "exp-b")
    bad = []
    for filter_string, order_by in cases:
        expected = _outcome(_reference_search, pair, ref_ids, filter_string, order_by, view, page_size)
        got = _outcome(_search, pair.ours, ours_ids, filter_string, order_by, view, page_size)
        if got != expected:
            bad.append({"filter": filter_string, "order_by": order_by, "ours": got, "mlflow": expected})
    return bad


FILTERS = [
    None,
    "",
    "metrics.loss < 0.5",
    "metrics.loss >= 0.5",
    "metrics.loss != 0.5",
    "metrics.loss = 0.25",
    "metrics.loss > 4",  # earlier steps logged loss + 5: only the latest step counts
    "metrics.acc > 0.3 AND metrics.acc <= 0.9",
    "metrics.acc > 1e308",
    "metrics.acc < -1e308",
    "metrics.acc = 0.5 and metrics.loss < 0.6",
    "metrics.missing > 0",
    "metrics.loss < '0.5'",
    "params.lr = '0.1'",
    "params.lr != '0.1'",
    "params.lr = '10'",
    "params.lr LIKE '0.%'",
    "params.lr LIKE '%e%'",
    "params.lr LIKE '_'",
    "params.model ILIKE 'LIN%'",
    "params.model LIKE 'Lin%'",
    "params.model IS NULL",
    "params.model IS NOT NULL",
    "params.lr > '0.05'",
    "params.lr IN ('0.1', '10')",
    "param.i LIKE '1%'",
    "tags.team = 'ads'",
    "tags.team != 'ads'",
    "tags.team ILIKE 'ads'",
    "tags.team IS NULL",
    "tags.team IS NOT NULL",
    "tags.`weird key` = 'x y'",
    "tags.`a.b` LIKE 'z%'",
    'tags."a.b" = \'zz\'',
    "tags.`mlflow.runName` LIKE 'alpha%'",
    "attributes.run_name = 'alpha'",
    "attributes.run_name != 'alpha'",
    "attributes.run_name LIKE 'alpha%'",
    "attributes.run_name ILIKE 'alpha%'",
    "attributes.run_name LIKE '%\\%%'",
    "attributes.run_name LIKE 'gamma%'",
    "attributes.run_name LIKE 'beta_%'",
    "run_name IN ('delta', 'beta-2')",
    "attributes.`run name` = 'delta'",
    "attributes.status = 'FINISHED'",
    "attributes.status != 'RUNNING'",
    "attributes.status IN ('FAILED', 'KILLED')",
    "attributes.status NOT IN ('FINISHED')",
    "attributes.status LIKE 'F%'",
    "attributes.user_id = 'alice'",
    "attributes.user_id ILIKE 'carol'",
    "attributes.start_time > 1030",
    "attributes.start_time <= 1030",
    "attributes.start_time = 1040",
    "attributes.start_time != 1040",
    "attributes.created >= 1050",
    "attributes.Created < 1020",
    "attributes.end_time > 1500",
    "attributes.end_time <= 2000",
    "attributes.end_time != 1500",
    "attributes.start_time > '1030'",
    "datasets.name = 'train'",
    "datasets.name != 'train'",
    "datasets.digest LIKE 'ab%'",
    "datasets.digest ILIKE 'AB%'",
    "datasets.context = 'eval'",
    "datasets.context != 'eval'",
    "datasets.name IN ('eval', 'nope')",
    "datasets.name NOT IN ('train')",
    "datasets.name = 'train' AND datasets.context = 'training' AND metrics.loss < 0.7",
    "params.lr LIKE '0%' AND tags.team ILIKE 'ads' AND attributes.status != 'RUNNING'",
    # invalid: both stores must refuse with the same error code
    "metrics.loss LIKE '0.%'",
    "params.lr < 1",
    "attributes.nope = 'x'",
    "foo.bar = 'x'",
    "metrics.loss > 0.1 OR metrics.loss < 0.05",
    "attributes.start_time LIKE '10%'",
    "datasets.profile = 'x'",
]

ORDERS = [
    None,
    ["metrics.loss ASC"],
    ["metrics.loss DESC"],
    ["metrics.loss"],
    ["metrics.acc DESC", "params.lr ASC"],
    ["metrics.acc", "metrics.loss DESC"],
    ["metrics.absent DESC"],
    ["params.lr"],
    ["params.lr DESC", "tags.team"],
    ["params.model DESC"],
    ["tags.team DESC"],
    ["tags.`weird key` ASC", "attributes.run_name DESC"],
    ["attributes.start_time ASC"],
    ["attributes.start_time"],
    ["start_time DESC"],
    ["created"],
    ["attributes.Created DESC"],
    ["attributes.run_name"],
    ["run_name DESC", "metrics.loss"],
    ["attributes.end_time"],
    ["attributes.end_time DESC"],
    ["attributes.status", "attributes.user_id DESC"],
    ["attributes.run_id"],
    ["attributes.run_id DESC"],
    ["attributes.lifecycle_stage"],
    ["attributes.experiment_id"],  # not orderable in MLflow: both refuse
    ["metrics.`loss` desc"],
    # invalid
    ["attributes.nope"],
    ["metrics.loss SIDEWAYS"],
    ["datasets.name"],
]


def test_filters_match_mlflow(pair):
    assert _mismatches(pair, [(f, None) for f in FILTERS]) == []
    # the data make the table meaningful: most filters select some runs but not all
    ours_ids = pair.ids("exp-a", "exp-b")[0]
    active = len(_search(pair.ours, ours_ids, None))
    sizes = [_outcome(_search, pair.ours, ours_ids, f, None) for f in FILTERS]
    assert sum(isinstance(n, list) and 0 < len(n) < active for n in sizes) >= 50


def test_orderings_match_mlflow(pair):
    cases = [(f, o) for o in ORDERS for f in (None, "metrics.acc >= 0.5", "params.lr LIKE '%1%'")]
    assert _mismatches(pair, cases) == []


def test_filters_with_orderings_page_by_page(pair):
    cases = [(f, o) for f in FILTERS[:30:3] for o in ORDERS[:12:2]]
    assert _mismatches(pair, cases, page_size=7) == []


def test_paging_concatenates_to_the_single_page_result(pair):
    ours_ids = pair.ids("exp-a", "exp-b")[0]
    for order_by in (None, ["metrics.loss DESC"], ["params.lr", "tags.team DESC"]):
        whole = _search(pair.ours, ours_ids, None, order_by, ViewType.ALL)
        for size in (1, 3, 10, len(whole) - 1, len(whole), len(whole) + 5):
            assert _search(pair.ours, ours_ids, None, order_by, ViewType.ALL, size) == whole
    assert len(whole) == N_RUNS


@pytest.mark.parametrize("view", [ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL])
def test_run_view_types_match_the_real_file_store(pair, view):
    ours_ids, ref_ids = pair.ids("exp-a", "exp-b")
    cases = [(None, None), ("metrics.loss < 0.5", ["metrics.loss DESC", "params.lr"])]
    for filter_string, order_by in cases:
        expected = _search(pair.ref, ref_ids, filter_string, order_by, view)
        assert _search(pair.ours, ours_ids, filter_string, order_by, view, 6) == expected
        assert _reference_search(pair, ref_ids, filter_string, order_by, view, 6) == expected
    active = set(_search(pair.ours, ours_ids, None))
    deleted = set(_search(pair.ours, ours_ids, None, view=ViewType.DELETED_ONLY))
    assert active and deleted and not active & deleted
    assert active | deleted == set(pair.run_ids)


def test_run_id_in_and_not_in_match_mlflow(pair):
    picked = pair.run_ids[3:12:2]
    quoted = ", ".join(f"'{r}'" for r in picked)
    cases = [
        (f"attributes.run_id IN ({quoted})", None),
        (f"attributes.run_id NOT IN ({quoted})", ["metrics.loss"]),
        (f"attributes.run_id = '{picked[0]}'", None),
        (f"attributes.run_id != '{picked[0]}'", None),
        (f"run_id IN ({quoted}) AND metrics.acc > 0.3", ["params.lr DESC"]),
        (f"attributes.run_id LIKE '{picked[0][:6]}%'", None),
    ]
    assert _mismatches(pair, cases) == []


def test_experiment_subsets_match_mlflow(pair):
    for names in (["exp-a"], ["exp-b"], ["exp-b", "exp-a"]):
        ours_ids, ref_ids = pair.ids(*names)
        for filter_string, order_by in ((None, None), ("metrics.loss < 0.5", ["metrics.loss DESC"])):
            expected = _search(pair.ref, ref_ids, filter_string, order_by)
            assert _search(pair.ours, ours_ids, filter_string, order_by) == expected


def test_search_returns_the_same_run_contents(pair):
    ours_ids, ref_ids = pair.ids("exp-a", "exp-b")
    ours = pair.ours.search_runs(ours_ids, None, ViewType.ALL, 1000)
    ref = {r.info.run_id: r for r in pair.ref.search_runs(ref_ids, None, ViewType.ALL, 1000)}
    assert len(ours) == N_RUNS
    for run in ours:
        expected = ref[run.info.run_id]
        assert run.data.params == expected.data.params
        assert run.data.tags == expected.data.tags
        assert repr(run.data.metrics) == repr(expected.data.metrics)  # repr: NaN == NaN
        for field in ("run_name", "status", "user_id", "start_time", "end_time", "lifecycle_stage"):
            assert getattr(run.info, field) == getattr(expected.info, field), field
        got_inputs = sorted((d.dataset.name, d.dataset.digest, tuple((t.key, t.value) for t in d.tags))
                            for d in run.inputs.dataset_inputs)
        want_inputs = sorted((d.dataset.name, d.dataset.digest, tuple((t.key, t.value) for t in d.tags))
                             for d in expected.inputs.dataset_inputs)
        assert got_inputs == want_inputs


def test_invalid_page_token_and_max_results_are_rejected(pair):
    ours_ids = pair.ids("exp-a")[0]
    for store, ids in ((pair.ours, ours_ids), (pair.ref, pair.ids("exp-a")[1])):
        with pytest.raises(MlflowException) as err:
            store.search_runs(ids, None, ViewType.ALL, 10, None, "not-a-token!")
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        pair.ours.search_runs(ours_ids, None, ViewType.ALL, 0)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


# -- experiments -----------------------------------------------------------------------------------

EXPERIMENT_NAMES = ["Sweep-A", "sweep-b", "sweep_c", "prod%1", "prod-2", "other", "Other-2", "zeta"]


@pytest.fixture(scope="module")
def experiment_pair(tmp_path_factory) -> Iterator[tuple[DeltaTrackingStore, object]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.store.tracking.file_store import FileStore

        base = tmp_path_factory.mktemp("experiments")
        ref = FileStore(str(base / "mlruns"), str(base / "mlruns-artifacts"))
        uri = f"delta:{base / 'lake'}"
        ours = DeltaTrackingStore(uri)
        rng = random.Random(5)
        for i, name in enumerate(EXPERIMENT_NAMES):
            tags = [ExperimentTag("owner", rng.choice(["ann", "Ann", "ben"]))]
            if i % 3:
                tags.append(ExperimentTag("weird key", rng.choice(["v 1", "v2"])))
            for store in (ref, ours):
                experiment_id = store.create_experiment(name, tags=tags)
                if i in (2, 5):
                    store.delete_experiment(experiment_id)
                if i == 4:
                    store.rename_experiment(experiment_id, "prod-2-renamed")
                time.sleep(0.003)  # distinct creation times, in the same order in both stores
        for store in (ref, ours):  # a later update must not move it in the default order
            store.rename_experiment(store.get_experiment_by_name("Sweep-A").experiment_id, "Sweep-A2")
        ours.flush()
        yield ours, ref
        Lake.opened(parse_root(uri)).close()


def _experiment_names(store, filter_string, order_by, view=ViewType.ACTIVE_ONLY, page_size=1000):
    try:
        names, token = [], None
        while True:
            page = store.search_experiments(view, page_size, filter_string, order_by, token)
            names += [e.name for e in page]
            token = page.token
            if not token:
                return names
    except MlflowException as exc:
        return ("error", exc.error_code)


EXPERIMENT_FILTERS = [
    None,
    "name = 'sweep-b'",
    "name != 'sweep-b'",
    "name LIKE 'sweep%'",
    "name ILIKE 'sweep%'",
    "attribute.name LIKE '%\\%%'",
    "name LIKE 'prod_2%'",
    "tags.owner = 'ann'",
    "tags.owner ILIKE 'ann'",
    "tags.owner != 'ann'",
    "tags.`weird key` = 'v2'",
    "tags.`weird key` IS NULL",
    "tags.`weird key` IS NOT NULL",
    "name LIKE '%o%' AND tags.owner LIKE 'A%'",
    "creation_time > 0",
    "creation_time < 0",
    "name IN ('zeta', 'other')",
    "tags.owner IN ('ann')",
    "creation_time LIKE '1%'",
    "name > 'p'",
    "metrics.x > 1",
    "name IS NULL",
]

EXPERIMENT_ORDERS = [
    None,
    ["name"],
    ["name DESC"],
    ["creation_time"],
    ["creation_time DESC"],
    ["attribute.name ASC"],
    ["last_update_time ASC", "name DESC"],
    ["tags.owner"],
]


def _reference_experiments(ref_experiments, filter_string, order_by, view, page_size):
    """FileStore.search_experiments on preloaded experiments: same filter, sort and paging code."""
    stages = {ViewType.ACTIVE_ONLY: {"active"}, ViewType.DELETED_ONLY: {"deleted"}}.get(view, {"active", "deleted"})
    try:
        candidates = [e for e in ref_experiments if e.lifecycle_stage in stages]
        ordered = SearchExperimentsUtils.sort(SearchExperimentsUtils.filter(candidates, filter_string),
                                              order_by or ["creation_time DESC", "experiment_id ASC"])
        names, token = [], None
        while True:
            page, token = SearchUtils.paginate(ordered, token, page_size)
            names += [e.name for e in page]
            if not token:
                return names
    except MlflowException as exc:
        return ("error", exc.error_code)


@pytest.mark.parametrize("view", [ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL])
def test_search_experiments_matches_mlflow(experiment_pair, view):
    ours, ref = experiment_pair
    preloaded = list(ref.search_experiments(ViewType.ALL, 1000))
    bad = []
    for filter_string in EXPERIMENT_FILTERS:
        for order_by in EXPERIMENT_ORDERS:
            for page_size in (1000, 3):
                expected = _reference_experiments(preloaded, filter_string, order_by, view, page_size)
                got = _experiment_names(ours, filter_string, order_by, view, page_size)
                if got != expected:
                    bad.append({"filter": filter_string, "order_by": order_by, "page": page_size,
                                "ours": got, "mlflow": expected})
    assert bad == []


@pytest.mark.parametrize("view", [ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL])
def test_search_experiments_matches_the_real_file_store(experiment_pair, view):
    ours, ref = experiment_pair
    preloaded = list(ref.search_experiments(ViewType.ALL, 1000))
    for filter_string, order_by in ((None, None), ("name LIKE '%o%'", ["name DESC"]), ("tags.owner = 'ann'", None),
                                    ("name = 'x'", ["tags.owner"])):
        expected = _experiment_names(ref, filter_string, order_by, view, 2)
        assert _experiment_names(ours, filter_string, order_by, view, 2) == expected
        assert _reference_experiments(preloaded, filter_string, order_by, view, 2) == expected
