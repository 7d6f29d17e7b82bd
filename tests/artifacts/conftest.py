"""Fixtures for the artifact tests: a blob store on a fresh root, files to upload, a clean fluent API."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _delta_artifacts_scheme():
    """The tracking store registers the scheme on import; do it here too in case a test starts elsewhere."""
    from sparkml_ops.tracking import artifact_plugin

    artifact_plugin.register()


@pytest.fixture
def location(root: Path):
    from sparkml_ops.lake import parse_root

    root.mkdir(parents=True, exist_ok=True)
    return parse_root(str(root))


@pytest.fixture
def blobs(location):
    """A blob store with small (64 KiB) chunks, so multi-chunk files stay small."""
    from sparkml_ops.lake.blobs import BlobStore

    return BlobStore(location, chunk_size=64 * 1024)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    directory = tmp_path / "src"
    directory.mkdir()
    return directory

