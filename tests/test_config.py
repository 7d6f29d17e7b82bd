"""One configuration: the spec's sections, the resolver's order, and the README table generated from the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkml_ops import config
from sparkml_ops.errors import BadInput

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- settings table: generated from sparkml_ops/config.py by settings_table(); a test checks it -->\n"
END = "<!-- end of settings table -->"


def test_readme_settings_table_is_generated_from_the_spec():
    text = README.read_text()
    assert START in text and END in text
    table = text.split(START, 1)[1].split(END, 1)[0]
    assert table == config.settings_table()
    for setting in config.SETTINGS.values():
        assert f"`{setting.env}`" in table


def test_no_setting_bypasses_the_spec():
    """The environment variables the package reads are the spec's, plus the few it passes on."""
    import re

    package = Path(config.__file__).resolve().parent
    names = set()
    for path in package.rglob("*.py"):
        names |= set(re.findall(r"['\"](SPARKML_OPS_[A-Z_]+)['\"]", path.read_text()))
    internal = {"SPARKML_OPS_CONF_DIR", "SPARKML_OPS_SERVE_CONFIG", "SPARKML_OPS_FALLBACK_SITE",
                "SPARKML_OPS_APP_INFO", "SPARKML_OPS_SERVER_SETTINGS",
                "SPARKML_OPS_NOTEBOOK_TAGS"}  # locations and process hand-overs (driver -> workers)
    assert names - internal <= {s.env for s in config.SETTINGS.values()}, names - internal


@pytest.fixture
def conf_dir(tmp_path, monkeypatch):
    directory = tmp_path / "conf"
    directory.mkdir()
    monkeypatch.setenv("SPARKML_OPS_CONF_DIR", str(directory))
    for setting in config.SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)
    return directory


def test_sections_in_files_then_env_then_argument(conf_dir, monkeypatch):
    (conf_dir / "sparkml_ops.toml").write_text(
        "[sparkml_ops]\nflush_max_rows = 9\n[sparkml_ops.serving]\nserve_max_batch_rows = 64\n"
        "[sparkml_ops.models]\nallow_pickle = true\n")
    assert config.resolve("serve_max_batch_rows") == 64
    assert config.resolve("flush_max_rows") == 9  # a flat key in [sparkml_ops] still counts
    assert config.resolve("allow_pickle") is True
    assert config.resolve("serve_max_wait_ms") == 0.0  # conf/'s file leaves it to the default
    monkeypatch.setenv("SPARKML_OPS_SERVE_MAX_BATCH_ROWS", "128")
    assert config.resolve("serve_max_batch_rows") == 128
    assert config.resolve("serve_max_batch_rows", 7) == 7
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    assert config.resolve("allow_pickle") is False


def test_bad_values_name_the_setting_and_every_place(conf_dir, monkeypatch):
    (conf_dir / "sparkml_ops.toml").write_text("[sparkml_ops.serving]\nserve_max_wait_ms = -1\n")
    with pytest.raises(BadInput) as info:
        config.resolve("serve_max_wait_ms")
    message = str(info.value)
    assert "serve_max_wait_ms" in message and "[sparkml_ops.serving]" in message and "-1" in message
    assert "$SPARKML_OPS_SERVE_MAX_WAIT_MS" in message
    monkeypatch.setenv("SPARKML_OPS_PIN_INPUTS", '{"not": "a list"}')
    with pytest.raises(BadInput, match="expected a JSON list"):
        config.resolve("pin_inputs")


def test_pins_come_through_the_resolver(conf_dir, monkeypatch):
    from sparkml_ops.projects.pins import pinned_inputs, pinned_version

    assert pinned_inputs() == []
    monkeypatch.setenv("SPARKML_OPS_PIN_INPUTS", '[{"path": "/data/events", "table": null, "version": 3}]')
    assert pinned_version("/data/events/") == 3 and pinned_version("/data/other") is None
    monkeypatch.setenv("SPARKML_OPS_PIN_INPUTS", '[{"path": "/data/events"}]')
    with pytest.raises(BadInput, match="objects with 'version'"):
        pinned_inputs()


def test_defaults_are_copies(conf_dir):
    config.resolve("pin_inputs").append({"version": 1})
    assert config.resolve("pin_inputs") == []
