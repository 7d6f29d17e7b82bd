"""The one retry policy: delta-rs errors classified by type, transient retried, terminal at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    DeltaProtocolError,
    SchemaMismatchError,
    TableNotFoundError,
)

from sparkml_ops.errors import BadInput, CommitConflict, StorageError
from sparkml_ops.lake import parse_root
from sparkml_ops.lake.delta import create_table
from sparkml_ops.lake.retry import is_transient, retry


def _raised(action) -> BaseException:
    try:
        action()
    except Exception as exc:  # the real error delta-rs raised
        return exc
    raise AssertionError("expected delta-rs to raise")


@pytest.fixture(scope="module")
def real_errors(tmp_path_factory) -> dict[str, BaseException]:
    """One real instance of each delta-rs error, produced by delta-rs itself where it can be."""
    base = tmp_path_factory.mktemp("errors")
    uri = str(base / "t")
    write_deltalake(uri, pa.table({"a": [1]}))
    stale = DeltaTable(uri)
    write_deltalake(uri, pa.table({"a": [2]}), mode="append")
    corrupt = str(base / "corrupt")
    write_deltalake(corrupt, pa.table({"a": [1]}))
    (Path(corrupt) / "_delta_log" / f"{1:020d}.json").write_text("garbage{")
    return {
        "commit_failed": _raised(lambda: write_deltalake(stale, pa.table({"a": [3]}), mode="append",
                                                         commit_properties=CommitProperties(max_commit_retries=0))),
        "schema_mismatch": _raised(lambda: write_deltalake(uri, pa.table({"b": ["x"]}), mode="append")),
        "table_not_found": _raised(lambda: DeltaTable(str(base / "missing"))),
        "io": _raised(lambda: DeltaTable(corrupt)),
        "protocol": DeltaProtocolError("table requires reader version 99"),  # delta-rs reports it as DeltaError here
    }


def test_real_errors_have_the_expected_types(real_errors):
    assert type(real_errors["commit_failed"]) is CommitFailedError
    assert type(real_errors["schema_mismatch"]) is SchemaMismatchError
    assert type(real_errors["table_not_found"]) is TableNotFoundError
    assert type(real_errors["io"]) is DeltaError


def test_only_commit_races_are_transient(real_errors):
    assert is_transient(real_errors["commit_failed"])
    assert is_transient(CommitConflict("moved past version 3"))
    for name in ("schema_mismatch", "table_not_found", "io", "protocol"):
        assert not is_transient(real_errors[name]), name
    assert not is_transient(OSError("disk full"))


class _Flaky:
    """Raises the given errors in turn, then returns 'done'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_transient_errors_are_retried_until_success(real_errors):
    action = _Flaky(real_errors["commit_failed"], CommitConflict("raced"), real_errors["commit_failed"])
    assert retry(action, what="commit to t", base_s=0.0001) == "done"
    assert action.calls == 4


@pytest.mark.parametrize("name", ["schema_mismatch", "table_not_found", "io", "protocol"])
def test_terminal_errors_surface_at_once_as_storage_errors(real_errors, name):
    action = _Flaky(real_errors[name])
    with pytest.raises(StorageError, match=f"cannot commit to t: {type(real_errors[name]).__name__}") as info:
        retry(action, what="commit to t")
    assert action.calls == 1
    assert info.value.__cause__ is real_errors[name]


def test_os_errors_are_terminal():
    action = _Flaky(PermissionError("read-only"))
    with pytest.raises(StorageError, match="PermissionError: read-only"):
        retry(action, what="create table x")
    assert action.calls == 1


def test_a_race_lost_every_time_gives_up_after_the_attempts(real_errors):
    action = _Flaky(*[real_errors["commit_failed"]] * 5)
    with pytest.raises(StorageError, match="cannot commit to t: CommitFailedError"):
        retry(action, what="commit to t", attempts=3, base_s=0.0001)
    assert action.calls == 3
    conflicts = _Flaky(*[CommitConflict("raced")] * 5)
    with pytest.raises(CommitConflict):  # our own transient error keeps its type for callers that re-plan
        retry(conflicts, what="sweep", attempts=2, base_s=0.0001)


def test_settled_work_ends_the_retry_and_other_errors_pass_through(real_errors):
    seen = []
    action = _Flaky(real_errors["io"])
    assert retry(action, what="commit", settled=lambda exc: seen.append(exc) or True) is None
    assert seen == [real_errors["io"]]
    for error in (BadInput("bad value"), ValueError("a bug"), StorageError("ours already")):
        action = _Flaky(error)
        with pytest.raises(type(error)) as info:
            retry(action, what="commit")
        assert info.value is error and action.calls == 1


def test_concurrent_creators_of_one_table_all_succeed(tmp_path):
    location = parse_root(tmp_path / "root")
    errors: list[BaseException] = []

    def create() -> None:
        try:
            create_table(location.table_uri("t"), pa.schema([("a", pa.int64())]), name="t", description="d")
        except BaseException as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert DeltaTable(location.table_uri("t")).version() == 0


def test_readers_list_again_when_a_listed_file_vanished(real_errors):
    from sparkml_ops.lake.retry import is_relisted

    vanished = FileNotFoundError("part-0001.parquet")
    action = _Flaky(vanished, real_errors["commit_failed"])
    assert retry(action, what="read t", transient=is_relisted, base_s=0.0001) == "done"
    assert action.calls == 3
    with pytest.raises(StorageError, match="FileNotFoundError"):  # a writer's missing file stays terminal
        retry(_Flaky(vanished), what="commit to t")
    assert not is_relisted(real_errors["schema_mismatch"])
