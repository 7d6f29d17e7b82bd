"""The layout version as a table property on every root, and `sparkml-ops migrate` from layout 1."""

from __future__ import annotations

import json
import threading

import pytest
from deltalake import DeltaTable

from sparkml_ops.errors import StorageError
from sparkml_ops.lake import LAYOUT_VERSION, TABLES, Lake, parse_root
from sparkml_ops.lake.layout import check_layout, migrate, table_layout
from sparkml_ops.lake.schemas import LAYOUT_PROPERTY
from tests.cli_run import run_cli
from tests.lake import layout1


@pytest.fixture
def old_root(tmp_path):
    return layout1.build(tmp_path / "layout1")


def _state(root) -> dict[str, tuple[int, list[str]]]:
    """Every table's version and data files."""
    out = {}
    for name in layout1.LAYOUT1_TABLES:
        dt = DeltaTable(str(root / "tables" / name))
        out[name] = (dt.version(), sorted(dt.file_uris()))
    return out


def test_new_roots_carry_the_layout_property_on_every_table(tmp_path):
    location = parse_root(tmp_path / "new")
    lake = Lake(location)
    try:
        for name in TABLES:
            config = DeltaTable(location.table_uri(name)).metadata().configuration
            assert config[LAYOUT_PROPERTY] == str(LAYOUT_VERSION), name
        assert json.loads((tmp_path / "new" / "_sparkml_ops.json").read_text())["layout_version"] == LAYOUT_VERSION
    finally:
        lake.close()


def test_a_layout_1_root_is_refused_with_the_command_that_upgrades_it(old_root):
    before = _state(old_root)
    with pytest.raises(StorageError, match=r"layout version 1.*sparkml-ops migrate --root delta:") as info:
        Lake(parse_root(old_root))
    assert str(old_root) in str(info.value)
    assert _state(old_root) == before  # nothing was changed or created
    assert not (old_root / "tables" / "registry").exists()


def test_the_table_property_decides_without_a_marker(old_root, tmp_path):
    """Object-store roots have no marker file: the probe table's property says the layout."""
    location = parse_root(old_root)
    assert table_layout(location, "runs") == 1
    assert table_layout(location, "registry") is None
    with pytest.raises(StorageError, match="sparkml-ops migrate"):
        check_layout(location)
    DeltaTable(location.table_uri("experiments")).alter.set_table_properties(
        {LAYOUT_PROPERTY: str(LAYOUT_VERSION + 1)}, raise_if_not_exists=False)
    with pytest.raises(StorageError, match="written by a newer sparkml_ops"):
        check_layout(location)


def test_migrate_upgrades_in_place_keeping_every_row_and_file(old_root, capsys):
    before = _state(old_root)
    assert run_cli("migrate", "--root", str(old_root)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from_version"] == 1 and report["to_version"] == LAYOUT_VERSION
    assert sorted(report["tables_upgraded"]) == sorted(layout1.LAYOUT1_TABLES)
    after = _state(old_root)
    for name, (version, files) in before.items():
        assert after[name] == (version + 1, files), name  # one metadata-only commit, no file rewritten
    assert json.loads((old_root / "_sparkml_ops.json").read_text())["layout_version"] == LAYOUT_VERSION

    from mlflow import MlflowClient

    client = MlflowClient(f"delta:{old_root}")
    try:
        run = client.get_run(layout1.RUN_ID)
        assert run.data.params == {"alpha": "0.5"} and run.info.run_name == "layout-one"
        assert [m.step for m in client.get_metric_history(layout1.RUN_ID, "loss")] == list(range(5))
        assert table_layout(parse_root(old_root), "registry") == LAYOUT_VERSION  # created on open, current
    finally:
        Lake.open(parse_root(old_root)).close()

    assert run_cli("migrate", "--root", str(old_root)) == 0  # idempotent
    again = json.loads(capsys.readouterr().out)
    assert again["tables_upgraded"] == [] and again["from_version"] == LAYOUT_VERSION


def test_readers_keep_reading_while_migrate_runs(old_root):
    """Plain Delta readers during the migration always see the same rows, and never an error."""
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(DeltaTable(str(old_root / "tables" / "metrics")).to_pyarrow_table().num_rows)
            except BaseException as exc:  # collected: asserted empty below
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        migrate(parse_root(old_root))
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert seen and set(seen) == {5}


def test_migrate_refuses_what_is_not_an_older_root(tmp_path, old_root, capsys):
    (tmp_path / "plain").mkdir()
    assert run_cli("migrate", "--root", str(tmp_path / "plain")) == 2
    assert "not a sparkml_ops tracking root" in capsys.readouterr().err
    marker = old_root / "_sparkml_ops.json"
    marker.write_text(json.dumps({"layout_version": LAYOUT_VERSION + 1, "tables": []}))
    with pytest.raises(StorageError, match="newer than this sparkml_ops"):
        migrate(parse_root(old_root))
