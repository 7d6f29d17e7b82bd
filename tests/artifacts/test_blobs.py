"""The blob store on real Delta tables: round trips, dedup, atomic publish, verification, bad input."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkml_ops.errors import BadInput, NotFound, StorageError
from sparkml_ops.lake.blobs import BlobStore, Source, check_path
from sparkml_ops.lake.blobs.paths import RULE
from tests.artifacts.helpers import chunk_files, random_bytes, write

NS = "artifacts"


def _read(blobs: BlobStore, path: str, tmp_path: Path) -> bytes:
    dest = tmp_path / "out" / path
    blobs.read_to(NS, path, str(dest))
    return dest.read_bytes()


def test_round_trip_of_text_binary_empty_multi_chunk_and_nested(blobs, src, tmp_path):
    contents = {
        "notes.txt": "héllo wörld\n".encode(),
        "bin/data.bin": random_bytes(5000, seed=1),
        "bin/empty": b"",
        "deep/a/b/c/big.bin": random_bytes(64 * 1024 * 3 + 17, seed=2),  # 4 chunks
        "exact.bin": random_bytes(64 * 1024, seed=3),  # exactly one full chunk
    }
    sources = [Source(name, str(write(src / name, data))) for name, data in contents.items()]
    result = blobs.put(NS, sources, dirs=["emptydir"])
    assert result.files == 5 and result.logical_bytes == sum(map(len, contents.values()))
    for name, data in contents.items():
        assert _read(blobs, name, tmp_path) == data
        entry = blobs.entry(NS, name)
        assert entry.size == len(data) and entry.sha256 == hashlib.sha256(data).hexdigest()
    assert len(blobs.entry(NS, "deep/a/b/c/big.bin").chunks) == 4
    assert blobs.children(NS, "") == [("bin", True, None), ("deep", True, None), ("emptydir", True, None),
                                      ("exact.bin", False, 64 * 1024), ("notes.txt", False, len(contents["notes.txt"]))]
    assert blobs.children(NS, "bin") == [("data.bin", False, 5000), ("empty", False, 0)]
    assert blobs.children(NS, "notes.txt") == []
    assert b"".join(blobs.iter_bytes(NS, "deep/a/b/c/big.bin")) == contents["deep/a/b/c/big.bin"]


def test_many_small_files_are_one_manifest_commit(blobs, src, tmp_path, location):
    files = {f"d{i % 7}/f{i:04d}.bin": random_bytes(300 + i, seed=i) for i in range(600)}
    sources = [Source(name, str(write(src / name, data))) for name, data in files.items()]
    manifest = DeltaTable(location.table_uri("blob_files"))
    before = manifest.version()
    blobs.put(NS, sources)
    manifest.update_incremental()
    assert manifest.version() == before + 1
    assert len(chunk_files(location)) == 1  # all 600 chunks in one Parquet file
    entries = blobs.walk(NS, "")
    blobs.download(NS, [(e, str(tmp_path / "all" / e.path)) for e in entries])
    for name, data in files.items():
        assert (tmp_path / "all" / name).read_bytes() == data


def test_same_content_is_stored_once(blobs, src, location):
    data = random_bytes(64 * 1024 * 8, seed=5)  # 8 chunks
    path = write(src / "model.bin", data)
    first = blobs.put(NS, [Source("run0/model.bin", str(path))])
    assert first.new_bytes == len(data)
    for i in range(1, 10):
        again = blobs.put(NS, [Source(f"run{i}/model.bin", str(path))])
        assert again.new_bytes == 0 and again.reused_chunks == 8
    usage = blobs.usage()
    assert usage["logical_bytes"] == 10 * len(data)
    assert usage["chunk_bytes"] == len(data)
    assert usage["physical_bytes"] < 1.1 * len(data)


def test_repeated_blocks_inside_one_file_are_stored_once(blobs, src):
    block = random_bytes(64 * 1024, seed=6)
    result = blobs.put(NS, [Source("rep.bin", str(write(src / "rep.bin", block * 6)))])
    assert result.chunks == 6 and result.new_bytes == len(block)


def test_stream_sources(blobs, tmp_path):
    data = random_bytes(200_000, seed=7)
    blobs.put(NS, [Source("s/stream.bin", stream=io.BytesIO(data))])
    assert _read(blobs, "s/stream.bin", tmp_path) == data


def test_overwrite_and_delete(blobs, src, tmp_path):
    blobs.put(NS, [Source("x/a.txt", str(write(src / "a1", b"one")))])
    blobs.put(NS, [Source("x/a.txt", str(write(src / "a2", b"two")))])
    assert _read(blobs, "x/a.txt", tmp_path) == b"two"
    blobs.put(NS, [Source("x/b/c.txt", str(write(src / "c", b"c")))])
    assert blobs.delete(NS, "x/b") == 1
    assert blobs.children(NS, "x") == [("a.txt", False, 3)]
    assert blobs.delete(NS, "nothing/here") == 0
    assert blobs.delete(NS, "x") == 1
    assert blobs.walk(NS, "") == []
    with pytest.raises(NotFound):
        blobs.read_to(NS, "x/a.txt", str(tmp_path / "gone"))
    blobs.put(NS, [Source("x/a.txt", str(src / "a1"))])  # a deleted path can be used again
    assert _read(blobs, "x/a.txt", tmp_path) == b"one"


@pytest.mark.parametrize("bad", ["../x", "a/../b", "/etc/passwd", "", "a//b", "a/./b", "a\x00b", ".", "C:/x",
                                 "\\abs"])
def test_bad_paths_are_rejected_and_nothing_is_written(blobs, src, location, bad):
    good = write(src / "f", b"data")
    with pytest.raises(BadInput) as raised:
        blobs.put(NS, [Source("ok.txt", str(good)), Source(bad, str(good))])
    assert repr(bad) in str(raised.value) and RULE in str(raised.value)  # names the value and the rule
    assert blobs.walk(NS, "") == []
    assert chunk_files(location) == []


def test_check_path_keeps_good_names():
    assert check_path("a/b c/d.txt") == "a/b c/d.txt"
    assert check_path("dir/") == "dir"
    assert check_path("", allow_empty=True) == ""
    assert check_path("weird:name?#") == "weird:name?#"


def test_file_directory_clashes_are_rejected(blobs, src):
    f = str(write(src / "f", b"x"))
    blobs.put(NS, [Source("a/b", f)])
    with pytest.raises(BadInput, match="existing file"):
        blobs.put(NS, [Source("a/b/c", f)])
    with pytest.raises(BadInput, match="existing directory"):
        blobs.put(NS, [Source("a", f)])
    with pytest.raises(BadInput, match="both a file and a directory"):
        blobs.put(NS, [Source("n", f), Source("n/m", f)])
    with pytest.raises(BadInput, match="twice"):
        blobs.put(NS, [Source("t", f), Source("t", f)])
    assert [e.path for e in blobs.walk(NS, "")] == ["a/b"]


def test_missing_source_file_writes_nothing(blobs, src, location):
    with pytest.raises(BadInput, match="cannot read"):
        blobs.put(NS, [Source("a", str(write(src / "a", b"1" * 100_000))), Source("b", str(src / "missing"))])
    assert blobs.walk(NS, "") == []
    assert chunk_files(location) == []  # the partial chunk file was removed


def _corrupt_first_chunk(location, needle: bytes) -> Path:
    table = Path(location.table_uri("blob_chunks"))
    for path in table.glob("*.parquet"):
        raw = bytearray(path.read_bytes())
        at = raw.find(needle)
        if at >= 0:
            raw[at + 10] ^= 0xFF
            path.write_bytes(bytes(raw))
            return path
    raise AssertionError("chunk bytes not found in any chunk file")


def test_corrupt_chunk_is_an_error_naming_the_artifact(blobs, src, location, tmp_path):
    data = random_bytes(64 * 1024 * 2 + 5, seed=9)
    blobs.put(NS, [Source("models/m1/model.pkl", str(write(src / "model.pkl", data)))])
    damaged = _corrupt_first_chunk(location, data[:64])
    pq.ParquetFile(damaged)  # still a readable Parquet file: only the bytes are wrong
    dest = tmp_path / "dl" / "model.pkl"
    with pytest.raises(StorageError, match=r"models/m1/model\.pkl.*corrupt"):
        blobs.read_to(NS, "models/m1/model.pkl", str(dest))
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no partial or wrong bytes left


def test_object_store_io_path(location, src, tmp_path):
    """The code path object-store roots take (delta-rs's object store), run on a local table."""
    store = BlobStore(location, chunk_size=64 * 1024, force_object_store=True)
    data = random_bytes(64 * 1024 * 3 + 1, seed=11)
    store.put(NS, [Source("o/big.bin", str(write(src / "big.bin", data))), Source("o/s.txt", stream=io.BytesIO(b"s"))])
    dest = tmp_path / "o" / "big.bin"
    store.read_to(NS, "o/big.bin", str(dest))
    assert dest.read_bytes() == data
    assert b"".join(store.iter_bytes(NS, "o/s.txt")) == b"s"


def test_tables_are_plain_delta(blobs, src, location):
    """Any Delta reader sees the manifest and the chunks."""
    data = b"plain delta"
    blobs.put(NS, [Source("p.txt", str(write(src / "p.txt", data)))])
    chunks = DeltaTable(location.table_uri("blob_chunks")).to_pyarrow_table()
    assert chunks.column("data").to_pylist() == [data]
    files = DeltaTable(location.table_uri("blob_files")).to_pyarrow_table()
    assert files.column("path").to_pylist() == ["p.txt"]
    assert files.column("chunks").to_pylist() == [[hashlib.sha256(data).hexdigest()]]
