"""Many processes on one registry: versions taken exactly once, names created once, aliases that
move atomically, and every returned call visible to every other process at once."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

from deltalake import DeltaTable

PROCESSES = 8
VERSIONS_PER_PROCESS = 6


def _register(uri: str, worker: int, results) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(registry_uri=uri, tracking_uri=uri)
    try:
        client.create_registered_model("contested")
        results.put(("created", worker))
    except MlflowException as exc:
        results.put(("exists", exc.error_code))
    for i in range(VERSIONS_PER_PROCESS):
        mv = client.create_model_version("shared", f"/src/{worker}/{i}")
        # Synchronous: another store object (a fresh process view) sees it when the call returns.
        results.put(("version", int(mv.version), mv.source))


def test_eight_processes_take_each_version_exactly_once(tracking_uri, root, registry):
    registry.create_registered_model("shared")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_register, args=(tracking_uri, w, results)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    collected = []
    for _ in range(PROCESSES * (VERSIONS_PER_PROCESS + 1)):
        collected.append(results.get(timeout=600))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    created = [r for r in collected if r[0] == "created"]
    refused = [r for r in collected if r[0] == "exists"]
    assert len(created) == 1 and len(refused) == PROCESSES - 1
    assert {r[1] for r in refused} == {"RESOURCE_ALREADY_EXISTS"}
    versions = sorted(r[1] for r in collected if r[0] == "version")
    total = PROCESSES * VERSIONS_PER_PROCESS
    assert versions == list(range(1, total + 1))  # no gap, no duplicate, none lost
    stored = registry.search_model_versions("name = 'shared'", max_results=1000)
    assert sorted(int(v.version) for v in stored) == versions
    by_version = {r[1]: r[2] for r in collected if r[0] == "version"}
    assert {int(v.version): v.source for v in stored} == by_version  # each number kept its own source
    # The table itself, read by plain delta-rs: one row per version, one model row per name creation.
    rows = DeltaTable(str(root / "tables" / "registry")).to_pyarrow_table().to_pylist()
    assert sorted(r["version"] for r in rows if r["kind"] == "version") == versions
    assert len([r for r in rows if r["kind"] == "model" and r["name"] == "contested"]) == 1


def _create_then_report(uri: str, done) -> None:
    from sparkml_ops.registry.store import DeltaRegistryStore

    store = DeltaRegistryStore(uri)
    store.create_registered_model("from-child")
    store.create_model_version("from-child", "/src/child")
    store.set_registered_model_alias("from-child", "champion", 1)
    done.put("returned")
    time.sleep(30)  # still alive: nothing may depend on this process's exit to publish


def test_a_returned_call_is_visible_to_other_processes_at_once(tracking_uri, registry):
    assert registry.search_registered_models().to_list() == []  # this process has read the registry
    ctx = mp.get_context("spawn")
    done = ctx.Queue()
    child = ctx.Process(target=_create_then_report, args=(tracking_uri, done))
    child.start()
    try:
        assert done.get(timeout=300) == "returned"
        assert registry.get_model_version_by_alias("from-child", "champion").source == "/src/child"
    finally:
        child.kill()
        child.join()


def _move_alias(uri: str, moves: int) -> None:
    from sparkml_ops.registry.store import DeltaRegistryStore

    store = DeltaRegistryStore(uri)
    for i in range(moves):
        store.set_registered_model_alias("m", "champion", 1 + i % 2)


def test_readers_never_miss_an_alias_while_it_moves(tracking_uri, registry):
    registry.create_registered_model("m")
    for i in range(2):
        registry.create_model_version("m", f"/src/{i + 1}")
    registry.set_registered_model_alias("m", "champion", 1)
    seen: list[int] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        from sparkml_ops.registry.store import DeltaRegistryStore

        reader = DeltaRegistryStore(tracking_uri)
        while not stop.is_set():
            try:
                seen.append(int(reader.get_model_version_by_alias("m", "champion").version))
            except Exception as exc:  # any failure is the bug this test is for
                errors.append(exc)

    ctx = mp.get_context("spawn")
    mover = ctx.Process(target=_move_alias, args=(tracking_uri, 30))
    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    mover.start()
    mover.join(timeout=300)
    stop.set()
    for t in threads:
        t.join()
    assert mover.exitcode == 0
    assert errors == []
    assert set(seen) == {1, 2}
    assert int(registry.get_model_version_by_alias("m", "champion").version) == 2  # the 30th move
