"""The MLflow artifact repository plugin, driven through the stock ``mlflow`` client."""

from __future__ import annotations

import filecmp
import io
import json
import os
import posixpath
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.tracking.artifact_utils import _get_root_uri_and_artifact_path
from mlflow.utils.uri import append_to_uri_path

from sparkml_ops.errors import BadInput
from sparkml_ops.tracking.artifact_repo import DeltaArtifactRepository
from sparkml_ops.tracking.artifact_uri import parse_artifact_uri, root_candidates
from tests.artifacts.helpers import chunk_files, random_bytes, write


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_new_experiments_and_runs_default_to_delta_artifacts(tracking_uri, root):
    exp_id = mlflow.create_experiment("delta-default")
    location = mlflow.get_experiment(exp_id).artifact_location
    assert location == f"delta-artifacts:{root}/artifacts/{exp_id}"
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_text("x", "x.txt")
    assert run.info.artifact_uri == f"{location}/{run.info.run_id}/artifacts"
    assert isinstance(get_artifact_repository(run.info.artifact_uri), DeltaArtifactRepository)
    assert not (root / "artifacts").exists()  # no plain files: the bytes are in Delta tables
    assert chunk_files(parse_artifact_uri(location).location)


def test_explicit_plain_directory_location_still_works(tracking_uri, tmp_path):
    plain = tmp_path / "plain-artifacts"
    exp_id = mlflow.create_experiment("plain", artifact_location=str(plain))
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_text("on disk", "d/t.txt")
    assert isinstance(get_artifact_repository(run.info.artifact_uri), LocalArtifactRepository)
    assert (plain / run.info.run_id / "artifacts" / "d" / "t.txt").read_text() == "on disk"
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/d/t.txt") == "on disk"


def test_fluent_logging_helpers_round_trip(tracking_uri):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    with mlflow.start_run() as run:
        mlflow.log_text("some text", "t/text.txt")
        mlflow.log_dict({"k": [1, 2]}, "t/d.json")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlflow.log_figure(fig, "plots/fig.png")
        plt.close(fig)
        mlflow.log_image(image, "img/i.png")
        mlflow.log_table(frame, "tables/t.json")
        mlflow.log_table(frame, "tables/t.json")  # appends: downloads, extends, re-uploads
    base = run.info.artifact_uri
    assert mlflow.artifacts.load_text(base + "/t/text.txt") == "some text"
    assert mlflow.artifacts.load_dict(base + "/t/d.json") == {"k": [1, 2]}
    assert np.array_equal(np.asarray(mlflow.artifacts.load_image(base + "/img/i.png")), image)
    assert mlflow.artifacts.load_image(base + "/plots/fig.png").size[0] > 0
    table = json.loads(mlflow.artifacts.load_text(base + "/tables/t.json"))
    assert len(table["data"]) == 4
    paths = [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert paths == ["img", "plots", "t", "tables"]


def test_log_list_download_delete_nested_directories(tracking_uri, tmp_path):
    src = tmp_path / "src"
    files = {"a.txt": b"alpha", "empty.bin": b"", "sub/b.bin": random_bytes(3000, seed=41),
             "sub/deeper/c.bin": random_bytes(10_000_000, seed=42)}  # c spans two chunks
    for name, data in files.items():
        write(src / name, data)
    (src / "sub" / "nothing").mkdir()
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), "dir")
        mlflow.log_artifact(str(src / "a.txt"))
    run_id = run.info.run_id
    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir, f.file_size) for f in top] == [("a.txt", False, 5), ("dir", True, None)]
    sub = client.list_artifacts(run_id, "dir/sub")
    assert [(f.path, f.is_dir, f.file_size) for f in sub] == [
        ("dir/sub/b.bin", False, 3000), ("dir/sub/deeper", True, None), ("dir/sub/nothing", True, None)]
    assert client.list_artifacts(run_id, "dir/a.txt") == []
    assert client.list_artifacts(run_id, "no/such") == []

    whole = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir",
                                                     dst_path=str(tmp_path / "d1")))
    assert _tree(whole) == files and (whole / "sub" / "nothing").is_dir()
    one = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir/sub/deeper/c.bin",
                                              dst_path=str(tmp_path / "d2"))
    assert filecmp.cmp(one, src / "sub" / "deeper" / "c.bin", shallow=False)
    everything = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "d3")))
    assert (everything / "a.txt").read_bytes() == b"alpha" and (everything / "dir" / "sub" / "b.bin").exists()
    with pytest.raises(MlflowException, match="such") as missing:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="no/such", dst_path=str(tmp_path / "d4"))
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    repo = get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("dir/sub")
    assert [f.path for f in client.list_artifacts(run_id, "dir")] == ["dir/a.txt", "dir/empty.bin"]
    repo.delete_artifacts("a.txt")
    assert [f.path for f in client.list_artifacts(run_id)] == ["dir"]
    repo.delete_artifacts()
    assert client.list_artifacts(run_id) == []


def test_uris_round_trip_through_mlflow_helpers(tracking_uri, root):
    with mlflow.start_run() as run:
        mlflow.log_text("deep", "a/b/c.txt")
    uri = run.info.artifact_uri
    joined = append_to_uri_path(uri, "a/b", "c.txt")
    assert joined == uri + "/a/b/c.txt"
    parent, name = _get_root_uri_and_artifact_path(joined)
    assert (parent, name) == (uri + "/a/b", "c.txt")
    assert mlflow.artifacts.load_text(joined) == "deep"
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/a/b/c.txt") == "deep"
    address = parse_artifact_uri(joined)
    assert address.location.uri == str(root) and address.prefix.endswith("/artifacts/a/b/c.txt")
    assert address.uri() == joined
    top = DeltaArtifactRepository(f"delta-artifacts:{root}/artifacts")  # the whole artifact space
    assert [f.path for f in top.list_artifacts()] == ["0"]


@pytest.mark.parametrize(("uri", "expected"), [
    ("delta-artifacts://s3://bucket/lake/artifacts/1/r/artifacts",
     [("s3://bucket/lake", "1/r/artifacts"), ("s3://bucket/lake/artifacts/1/r", "")]),
    ("delta-artifacts://gs://b/artifacts/x", [("gs://b", "x")]),
    ("delta-artifacts:s3://b/root/artifacts", [("s3://b/root", "")]),
    ("delta-artifacts:/data/artifacts/lake/artifacts/7",
     [("/data", "lake/artifacts/7"), ("/data/artifacts/lake", "7")]),
    ("delta-artifacts:///abs/artifacts/1", [("/abs", "1")]),
])
def test_object_store_and_local_uri_forms(uri, expected):
    assert root_candidates(uri) == expected
    # MLflow's joins and splits keep root and path intact
    joined = append_to_uri_path(uri, "model/MLmodel")
    assert root_candidates(joined)[0] == (expected[0][0], "/".join(p for p in (expected[0][1], "model/MLmodel") if p))
    parent, name = _get_root_uri_and_artifact_path(joined)
    assert name == "MLmodel"
    assert root_candidates(parent)[0] == (expected[0][0], "/".join(p for p in (expected[0][1], "model") if p))


@pytest.mark.parametrize("uri", ["delta-artifacts://host/x/artifacts", "delta-artifacts:relative/artifacts/1",
                                 "delta-artifacts:/no/namespace/here", "file:/x/artifacts"])
def test_malformed_artifact_uris(uri):
    with pytest.raises(BadInput):
        root_candidates(uri)


def test_uri_without_a_root_is_rejected(tmp_path):
    with pytest.raises(BadInput, match="names no sparkml_ops root"):
        DeltaArtifactRepository(f"delta-artifacts:{tmp_path}/nowhere/artifacts/1")


BAD_ARTIFACT_PATHS = ["../escape", "a/../../b", "/etc", "a//b", "a\x00b", "./x"]


@pytest.mark.parametrize("bad", BAD_ARTIFACT_PATHS)
def test_bad_artifact_paths_write_nothing(tracking_uri, tmp_path, bad):
    src = write(tmp_path / "f.txt", b"payload")
    with mlflow.start_run() as run:
        repo = get_artifact_repository(run.info.artifact_uri)
        with pytest.raises(BadInput) as raised:
            repo.log_artifact(str(src), bad)
        assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(BadInput):
            repo.log_artifacts(str(tmp_path), bad)
        with pytest.raises(BadInput):
            repo.log_artifact_from_stream(io.BytesIO(b"x"), "f.txt", bad)
        normalised = posixpath.normpath(bad)  # what mlflow.log_text passes on
        if normalised.startswith(("..", "/")) or "\x00" in normalised:
            with pytest.raises(MlflowException):
                mlflow.log_text("x", f"{bad}/t.txt")
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []
    assert chunk_files(parse_artifact_uri(run.info.artifact_uri).location) == []


def test_symlink_outside_the_logged_directory_is_rejected(tracking_uri, tmp_path):
    outside = write(tmp_path / "secret.txt", b"secret")
    logged = tmp_path / "logged"
    write(logged / "ok.txt", b"ok")
    write(logged / "inner" / "real.txt", b"real")
    os.symlink(logged / "inner" / "real.txt", logged / "inside-link.txt")  # stays inside: followed
    os.symlink(logged / "inner", logged / "inside-dir")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(logged), "good")
        os.symlink(outside, logged / "inner" / "leak.txt")
        with pytest.raises(BadInput, match="points outside the logged directory"):
            mlflow.log_artifacts(str(logged), "bad")
        os.remove(logged / "inner" / "leak.txt")
        os.symlink(tmp_path, logged / "inner" / "up")
        with pytest.raises(BadInput, match="points outside"):
            mlflow.log_artifacts(str(logged), "bad")
        os.remove(logged / "inner" / "up")
        os.symlink(logged, logged / "inner" / "loop")
        with pytest.raises(BadInput, match="loop"):
            mlflow.log_artifacts(str(logged), "bad")
    client = mlflow.MlflowClient()
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["good"]
    got = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="good",
                                                   dst_path=str(tmp_path / "dl")))
    assert _tree(got) == {"ok.txt": b"ok", "inner/real.txt": b"real", "inside-link.txt": b"real",
                          "inside-dir/real.txt": b"real"}


def test_stream_upload_and_corruption_is_reported_with_the_artifact_name(tracking_uri, tmp_path):
    data = random_bytes(100_000, seed=43)
    with mlflow.start_run() as run:
        repo = get_artifact_repository(run.info.artifact_uri)
        repo.log_artifact_from_stream(io.BytesIO(data), "ignored/dir/weights.bin", "w")
    assert mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="w/weights.bin",
                                               dst_path=str(tmp_path)) == str(tmp_path / "weights.bin")
    assert (tmp_path / "weights.bin").read_bytes() == data
    location = parse_artifact_uri(run.info.artifact_uri).location
    for path in Path(location.table_uri("blob_chunks")).glob("*.parquet"):
        raw = bytearray(path.read_bytes())
        at = raw.find(data[:64])
        if at >= 0:
            raw[at + 100] ^= 0x01
            path.write_bytes(bytes(raw))
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(MlflowException, match=r"w/weights\.bin.*corrupt"):  # runs:/ would hide the reason
        mlflow.artifacts.download_artifacts(artifact_uri=run.info.artifact_uri + "/w/weights.bin",
                                            dst_path=str(again))
    assert list(again.iterdir()) == []


def test_async_stream_upload(tracking_uri, tmp_path):
    import asyncio

    async def chunks():
        for i in range(5):
            yield bytes([i]) * 100_000

    with mlflow.start_run() as run:
        repo = get_artifact_repository(run.info.artifact_uri)
        asyncio.run(repo.log_artifact_from_async_stream(chunks(), "a.bin", "async"))
    got = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="async/a.bin",
                                                   dst_path=str(tmp_path)))
    assert got.read_bytes() == b"".join(bytes([i]) * 100_000 for i in range(5))


def test_scheme_registration_needs_no_entry_point():
    """The entry-point target imports no MLflow; importing the tracking store registers the scheme."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import sparkml_ops.tracking.artifact_plugin as p\n"
        "assert 'mlflow' not in sys.modules, 'the entry-point module must not import mlflow'\n"
        "from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry as r\n"
        "r._registry.pop('delta-artifacts', None)\n"
        "import sparkml_ops.tracking.store\n"
        "assert r._registry['delta-artifacts'] is p.artifact_repository\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
