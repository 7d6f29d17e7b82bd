from __future__ import annotations

import os

import pytest

from sparkml_ops import config
from sparkml_ops.errors import BadInput
from sparkml_ops.lake.location import parse_root


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("delta:/data/mlops", "/data/mlops"),
        ("delta:///data/mlops", "/data/mlops"),
        ("/data/mlops", "/data/mlops"),
        ("delta://s3://bucket/mlops", "s3://bucket/mlops"),
        ("delta:file:///data/x", "/data/x"),
    ],
)
def test_uri_forms(uri, expected):
    assert parse_root(uri).uri == expected


def test_relative_paths_resolve_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_root("delta:rel/root").uri == str(tmp_path / "rel" / "root")


@pytest.mark.parametrize("bad", ["", "delta:", "delta://host/path", "ftp://x/y", "delta:/a\x00b"])
def test_bad_uris_are_rejected_with_the_value(bad):
    with pytest.raises(BadInput):
        parse_root(bad)


def test_config_resolution_order(tmp_path, monkeypatch):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "sparkml_ops.toml").write_text('[sparkml_ops]\nroot = "/from/file"\nflush_max_rows = 7\n')
    monkeypatch.setenv("SPARKML_OPS_CONF_DIR", str(conf_dir))
    monkeypatch.delenv("SPARKML_OPS_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert config.resolve("flush_max_rows") == 7
    assert config.tracking_uri() == "delta:/from/file"
    monkeypatch.setenv("SPARKML_OPS_ROOT", "/from/env")
    assert config.tracking_uri() == "delta:/from/env"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "delta:/from/mlflow")
    assert config.tracking_uri() == "delta:/from/mlflow"
    assert config.tracking_uri("/explicit") == "delta:/explicit"
    monkeypatch.delenv("SPARKML_OPS_ENV_CACHE", raising=False)
    assert config.is_configured("flush_max_rows") and not config.is_configured("env_cache_dir")
    monkeypatch.setenv("SPARKML_OPS_ENV_CACHE", "/envs")
    assert config.is_configured("env_cache_dir")


def test_bad_setting_names_every_place_looked(monkeypatch):
    monkeypatch.setenv("SPARKML_OPS_FLUSH_INTERVAL_MS", "soon")
    with pytest.raises(BadInput) as info:
        config.resolve("flush_interval_ms")
    assert "SPARKML_OPS_FLUSH_INTERVAL_MS" in str(info.value) and "soon" in str(info.value)
    assert os.environ["SPARKML_OPS_FLUSH_INTERVAL_MS"] == "soon"
