"""Content-addressed, chunked blob storage on the Delta tables of a root.

``put`` splits each file into fixed-size chunks keyed by sha256, writes only the chunks the
root lacks (dedup), commits them, checks them against pending GC marks and then makes the
whole batch visible in ONE manifest commit. ``read_to``/``download`` stream chunk by chunk,
verifying every chunk and every file, and publish each file by rename. Memory stays bounded
by a few chunks whatever the file size. Knows nothing of MLflow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import CommitFailedError

from sparkml_ops.errors import BadInput, NotFound, StorageError
from sparkml_ops.lake.blobs.chunks import ChunkIndex, ChunkReader, ChunkWriter, Location, commit_actions, now_ms
from sparkml_ops.lake.blobs.incremental import CommitHandle
from sparkml_ops.lake.blobs.manifest import KIND_DIR, KIND_FILE, Manifest
from sparkml_ops.lake.blobs.marks import Marks
from sparkml_ops.lake.blobs.paths import check_path, parents
from sparkml_ops.lake.blobs.pipeline import BackgroundHasher, prefetch
from sparkml_ops.lake.blobs.tables import CHUNKS, ensure_tables
from sparkml_ops.lake.fileio import TableFiles
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import backoff, retry

_log = logging.getLogger(__name__)

CHUNK_SIZE = 8 * 1024 * 1024
# An upload commits its manifest within this many seconds of checking its chunks against
# GC marks (it re-checks otherwise); gc waits longer than this between mark and sweep.
VERIFY_TTL_S = 2.0
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Source:
    """One file to upload: a local file ``path`` or a readable binary ``stream``."""

    dest: str
    path: str | None = None
    stream: BinaryIO | None = None


@dataclass(frozen=True)
class Entry:
    """A live manifest entry."""

    path: str
    kind: str
    size: int
    sha256: str | None
    chunks: tuple[str, ...]

    @property
    def is_dir(self) -> bool:
        return self.kind == KIND_DIR


@dataclass
class PutResult:
    upload_id: str
    files: int
    logical_bytes: int
    new_bytes: int
    chunks: int
    reused_chunks: int


class _FileState:
    """Size, chunk hashes and whole-file sha256 of the file being uploaded."""

    def __init__(self) -> None:
        self.size = 0
        self.hashes: list[str] = []
        self.hasher: BackgroundHasher | None = None

    def add(self, data: Any, digest: str) -> None:
        if self.hasher is not None:
            self.hasher.update(data)
        self.size += len(data)
        self.hashes.append(digest)

    def digest(self) -> str:
        if self.hasher is not None:
            return self.hasher.hexdigest()
        return self.hashes[0] if self.hashes else EMPTY_SHA256  # one chunk: the same bytes

    def close(self) -> None:
        if self.hasher is not None:
            self.hasher.close()


def _entry(row: dict[str, Any]) -> Entry:
    return Entry(row["path"], row["kind"], int(row["size"] or 0), row["sha256"], tuple(row["chunks"] or ()))


class BlobStore:
    """Blob storage of one root; ``BlobStore.open`` shares one instance per root and process."""

    _open: ClassVar[dict[RootLocation, BlobStore]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, location: RootLocation, *, chunk_size: int = CHUNK_SIZE,
                 force_object_store: bool = False) -> None:
        if chunk_size < 1024:
            raise BadInput(f"chunk_size {chunk_size} is too small; use at least 1024 bytes")
        self.location = location
        self.chunk_size = chunk_size
        ensure_tables(location)
        self.files = TableFiles(location, CHUNKS.name, force_object_store=force_object_store)
        self.index = ChunkIndex(location, self.files)
        self.manifest = Manifest(location)
        self.marks = Marks(location)
        self.chunk_commits = CommitHandle(location, CHUNKS.name)

    @classmethod
    def open(cls, location: RootLocation) -> BlobStore:
        with cls._open_lock:
            store = cls._open.get(location)
            if store is None:
                store = cls._open[location] = cls(location)
            return store

    # ================================================================== writing

    def put(self, namespace: str, sources: Sequence[Source], dirs: Sequence[str] = ()) -> PutResult:
        """Store ``sources`` (and empty directories ``dirs``) and publish them in one commit.

        Every path is checked before anything is written; on any error nothing becomes visible.
        """
        namespace = check_path(namespace, "namespace")
        dests = [check_path(s.dest, "blob path") for s in sources]
        dir_paths = [check_path(d, "directory path") for d in dirs]
        for source in sources:
            if (source.path is None) == (source.stream is None):
                raise BadInput(f"source for {source.dest!r} needs exactly one of a local path or a stream")
        self.manifest.refresh()
        self._check_layout(namespace, dests, dir_paths)
        upload_id = uuid.uuid4().hex
        self.index.refresh()
        writer = ChunkWriter(self.files, upload_id)
        try:
            rows, origins, stats = self._write_chunks(namespace, sources, dests, writer)
            commit_actions(self.location, writer.close(), app_id=upload_id, handle=self.chunk_commits)
        except BaseException:
            writer.abort()
            raise
        created = now_ms()
        for d in dir_paths:
            rows.append({"namespace": namespace, "path": d, "kind": KIND_DIR, "size": 0, "sha256": None,
                         "chunks": [], "upload_id": upload_id, "created_ms": created, "deleted": False})
        self._publish(rows, origins, sources, upload_id)
        return PutResult(upload_id, len(sources), stats[0], writer.bytes_written, stats[1], stats[2])

    def _check_layout(self, namespace: str, dests: list[str], dirs: list[str]) -> None:
        """A path cannot be a file and a directory at once, in the batch or against the manifest."""
        new_files = set(dests)
        if len(new_files) != len(dests):
            dup = next(d for d in dests if dests.count(d) > 1)
            raise BadInput(f"blob path {dup!r} appears twice in one upload")
        wanted = new_files | set(dirs)
        ancestors = {a for p in wanted for a in parents(p)}
        clash = ancestors & new_files
        if clash:
            raise BadInput(f"{sorted(clash)[0]!r} would be both a file and a directory in this upload")
        if dirs and set(dirs) & new_files:
            raise BadInput(f"{sorted(set(dirs) & new_files)[0]!r} is given both as a file and as a directory")
        live = self.manifest.in_namespace(namespace)
        if live.num_rows == 0:
            return
        files_only = live.filter(pc.equal(live.column("kind"), KIND_FILE))
        above = files_only.filter(pc.is_in(files_only.column("path"),
                                           value_set=pa.array(sorted(ancestors | set(dirs)), pa.string())))
        if above.num_rows:
            raise BadInput(f"{above.column('path')[0].as_py()!r} is an existing file, so it cannot be a directory")
        common = os.path.commonpath(sorted(wanted)) if wanted else ""
        below = self.manifest.under(namespace, common)
        live_dirs = {a for p in below.column("path").to_pylist() for a in parents(p)}
        live_dirs |= set(below.filter(pc.equal(below.column("kind"), KIND_DIR)).column("path").to_pylist())
        taken = new_files & live_dirs
        if taken:
            raise BadInput(f"{sorted(taken)[0]!r} is an existing directory, so it cannot be a file")

    def _write_chunks(self, namespace: str, sources: Sequence[Source], dests: list[str],
                      writer: ChunkWriter) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int, int]],
                                                    tuple[int, int, int]]:
        """Hash every chunk (reader thread), write the new ones (this thread), hash whole files (3rd)."""
        known = self.index.hash_set()
        rows: list[dict[str, Any]] = []
        origins: dict[str, tuple[int, int, int]] = {}
        logical = chunks = reused = 0
        current = _FileState()
        items = self._read_sources(sources)
        if any(self._is_large(source) for source in sources):  # read + hash on a second core
            items = _flatten(prefetch(self._read_batches(sources), depth=3))
        try:
            for idx, offset, data, digest in items:
                if data is None:  # end of source idx
                    rows.append({"namespace": namespace, "path": dests[idx], "kind": KIND_FILE,
                                 "size": current.size, "sha256": current.digest(), "chunks": current.hashes,
                                 "upload_id": writer.upload_id, "created_ms": now_ms(), "deleted": False})
                    logical += current.size
                    current = _FileState()
                    continue
                assert digest is not None  # only the end-of-source marker has none
                if offset == 0 and len(data) == self.chunk_size:  # more chunks may follow: hash the file too
                    current.hasher = BackgroundHasher()
                current.add(data, digest)
                origins.setdefault(digest, (idx, offset, len(data)))
                chunks += 1
                if digest in known or digest in writer.written:
                    reused += 1
                else:
                    writer.add(digest, data)
        finally:
            current.close()
        return rows, origins, (logical, chunks, reused)

    def _is_large(self, source: Source) -> bool:
        """Worth a reader thread: more than a chunk, or a stream of unknown size."""
        if source.path is None:
            return True
        try:
            return os.path.getsize(source.path) > self.chunk_size
        except OSError:
            return False  # the reader reports it

    def _read_batches(self, sources: Sequence[Source]) -> Iterator[list[tuple[int, int, Any, str | None]]]:
        """Items of :meth:`_read_sources` grouped into batches of about one chunk of bytes
        (one queue hand-off per batch, not per small file)."""
        batch: list[tuple[int, int, Any, str | None]] = []
        size = 0
        for item in self._read_sources(sources):
            batch.append(item)
            size += len(item[2]) if item[2] is not None else 0
            if size >= self.chunk_size or len(batch) >= 512:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _read_sources(self, sources: Sequence[Source]) -> Iterator[tuple[int, int, Any, str | None]]:
        for idx, source in enumerate(sources):
            if source.path is not None:
                try:
                    handle: Any = open(source.path, "rb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    raise BadInput(f"cannot read {source.path!r} for blob {source.dest!r}: {exc}") from exc
            else:
                handle = source.stream
            try:
                offset = 0
                left = os.fstat(handle.fileno()).st_size if source.path is not None else None
                while True:
                    # read(n) allocates n bytes first: ask for no more than the file holds
                    data = handle.read(self.chunk_size if left is None else max(1, min(left, self.chunk_size)))
                    if left is not None:
                        left -= len(data)
                    if not data:
                        break
                    while len(data) < self.chunk_size:  # streams may return short reads
                        more = handle.read(self.chunk_size - len(data))
                        if not more:
                            break
                        data += more
                    yield idx, offset, data, hashlib.sha256(data).hexdigest()
                    offset += len(data)
                    if len(data) < self.chunk_size:
                        break
            finally:
                if source.path is not None:
                    handle.close()
            yield idx, offset, None, None

    def _publish(self, rows: list[dict[str, Any]], origins: dict[str, tuple[int, int, int]],
                 sources: Sequence[Source], upload_id: str) -> None:
        """Check every referenced chunk against pending GC marks, then commit the manifest.

        A chunk is safe when a copy exists that was created at or after every pending mark's
        cutoff; otherwise a fresh copy is written first. The manifest commit starts within
        :data:`VERIFY_TTL_S` of the check (gc waits longer between mark and sweep).
        """
        needed = {h for r in rows for h in r["chunks"]}
        for attempt in range(8):
            self.index.refresh()
            checked = time.monotonic()  # marks committed before this instant are seen below
            self.marks.refresh()
            unsafe = self._unsafe(needed)
            if unsafe:
                _log.info("upload %s rewrites %d chunk(s) a concurrent gc had marked", upload_id, len(unsafe))
                self._rewrite(unsafe, origins, sources, f"{upload_id}-r{attempt}")
                continue
            if time.monotonic() - checked > VERIFY_TTL_S:
                continue
            seq = self.manifest.next_seq()
            for row in rows:
                row["seq"] = seq
            try:
                self.manifest.commit(rows, upload_id, retry=attempt > 0)
            except CommitFailedError as exc:
                _log.debug("manifest commit of %s conflicted (%s); retrying", upload_id, exc)
                backoff(attempt)
                continue
            if time.monotonic() - checked > VERIFY_TTL_S:  # slow commit: make sure nothing was swept
                self.index.refresh()
                self.marks.refresh()
                late = self._unsafe(needed)
                if late:
                    _log.warning("upload %s: repairing %d chunk(s) swept during a slow commit", upload_id, len(late))
                    self._rewrite(late, origins, sources, f"{upload_id}-late")
            self.manifest.refresh()
            return
        raise StorageError(f"upload {upload_id} could not publish its manifest after 8 attempts")

    def _unsafe(self, needed: set[str]) -> set[str]:
        newest = self.index.newest_created(needed)
        cutoffs = self.marks.pending_cutoffs(needed)
        return {h for h in needed if h not in newest or (h in cutoffs and newest[h] < cutoffs[h])}

    def _rewrite(self, hashes: set[str], origins: dict[str, tuple[int, int, int]], sources: Sequence[Source],
                 txn_id: str) -> None:
        """Write fresh copies of ``hashes`` from an existing copy or from the source file."""
        writer = ChunkWriter(self.files, txn_id)
        reader = ChunkReader(self.files)
        located = self.index.locate(hashes)
        try:
            for digest in sorted(hashes):
                data = None
                if digest in located:
                    try:
                        data = reader.read(located[digest])
                    except FileNotFoundError:
                        data = None
                if data is None or hashlib.sha256(data).hexdigest() != digest:
                    data = self._reread(digest, origins, sources)
                writer.add(digest, data)
            commit_actions(self.location, writer.close(), app_id=txn_id, handle=self.chunk_commits)
        except BaseException:
            writer.abort()
            raise

    def _reread(self, digest: str, origins: dict[str, tuple[int, int, int]], sources: Sequence[Source]) -> bytes:
        idx, offset, length = origins[digest]
        source = sources[idx]
        if source.path is None:
            raise StorageError(
                f"chunk {digest[:12]} of blob {source.dest!r} was swept by a concurrent gc and its source "
                "stream cannot be read again; retry the upload")
        with open(source.path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        if hashlib.sha256(data).hexdigest() != digest:
            raise StorageError(f"{source.path!r} changed while it was being uploaded as {source.dest!r}; retry")
        return data

    def delete(self, namespace: str, path: str) -> int:
        """Tombstone ``path`` and everything below it ('' = the whole namespace) in one commit."""
        return self.delete_many(namespace, [path])

    def delete_many(self, namespace: str, paths: Sequence[str]) -> int:
        """Tombstone every entry at or below any of ``paths`` in one commit; the number removed."""
        namespace = check_path(namespace, "namespace")
        checked = [check_path(p, "blob path", allow_empty=True) for p in paths]
        self.manifest.refresh()
        victims: dict[str, str] = {}
        for path in checked:
            rows = self.manifest.under(namespace, path)
            victims.update(zip(rows.column("path").to_pylist(), rows.column("kind").to_pylist(), strict=True))
        if not victims:
            return 0
        seq = self.manifest.next_seq()
        txn = uuid.uuid4().hex
        rows = [{"namespace": namespace, "path": p, "kind": k, "size": 0, "sha256": None, "chunks": [],
                 "upload_id": txn, "created_ms": now_ms(), "deleted": True, "seq": seq} for p, k in victims.items()]
        # retry=True: a failed attempt may still have landed (its transaction says so)
        retry(lambda: self.manifest.commit(rows, txn, retry=True), what=f"commit the deletion of {checked!r}")
        self.manifest.refresh()
        return len(rows)

    # ================================================================== reading

    def entry(self, namespace: str, path: str) -> Entry | None:
        self.manifest.refresh()
        row = self.manifest.entry(namespace, path)
        return None if row is None else _entry(row)

    def walk(self, namespace: str, path: str) -> list[Entry]:
        """Live entries at ``path`` or below it, sorted by path."""
        self.manifest.refresh()
        rows = self.manifest.under(namespace, path)
        rows = rows.take(pc.sort_indices(rows, sort_keys=[("path", "ascending")]))
        return [_entry(r) for r in rows.to_pylist()]

    def children(self, namespace: str, path: str) -> list[tuple[str, bool, int | None]]:
        """``(name, is_dir, size)`` of the entries directly below directory ``path``."""
        prefix = f"{path}/" if path else ""
        seen: dict[str, tuple[str, bool, int | None]] = {}
        for entry in self.walk(namespace, path):
            if entry.path == path:
                continue
            rest = entry.path[len(prefix):]
            name, _, below = rest.partition("/")
            if below or entry.is_dir:
                seen[name] = (name, True, None)
            elif name not in seen:
                seen[name] = (name, False, entry.size)
        return [seen[n] for n in sorted(seen)]

    def read_to(self, namespace: str, path: str, dest: str) -> Entry:
        """Download one file to ``dest`` (verified; published by rename)."""
        entry = self.entry(namespace, path)
        if entry is None or entry.is_dir:
            raise NotFound(f"no blob {path!r} in namespace {namespace!r}")
        self.download(namespace, [(entry, dest)])
        return entry

    def download(self, namespace: str, items: Sequence[tuple[Entry, str]]) -> None:
        """Download many entries, reading chunk files in storage order; each file appears whole."""
        files = [(e, d) for e, d in items if not e.is_dir]
        for entry, dest in items:
            if entry.is_dir:
                os.makedirs(dest, exist_ok=True)
        if not files:
            return
        self.index.refresh()
        located = self.index.locate({h for e, _ in files for h in e.chunks})
        far = Location("\uffff", 0, 0)
        files.sort(key=lambda ed: (located.get(ed[0].chunks[0], far).file, located.get(ed[0].chunks[0], far).rg)
                   if ed[0].chunks else ("", -1))
        current: dict[str, Any] = {}
        try:
            for i, buffer in prefetch(self._verified_chunks(namespace, files, located), depth=3):
                entry, dest = files[i]
                if current.get("index") != i:
                    self._finish(current)
                    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                    temp = f"{dest}.{uuid.uuid4().hex[:8]}.partial"
                    current = {"index": i, "entry": entry, "dest": dest, "temp": temp,
                               "handle": open(temp, "wb"),  # noqa: SIM115 - closed in _finish
                               "hasher": BackgroundHasher() if len(entry.chunks) > 1 else None, "size": 0}
                if buffer is None:
                    continue
                current["handle"].write(buffer)
                current["size"] += buffer.size
                if current["hasher"] is not None:
                    current["hasher"].update(buffer)
            self._finish(current)
        except BaseException:
            if current.get("hasher") is not None:
                current["hasher"].close()
            if current.get("handle"):
                current["handle"].close()
                try:
                    os.remove(current["temp"])
                except OSError:
                    pass
            raise

    def _finish(self, current: dict[str, Any]) -> None:
        if not current:
            return
        current["handle"].close()
        entry: Entry = current["entry"]
        if current["hasher"] is not None and current["hasher"].hexdigest() != entry.sha256:
            os.remove(current["temp"])
            raise StorageError(f"blob {entry.path!r}: the file's sha256 does not match its manifest; "
                               "the stored data is damaged")
        if current["size"] != entry.size:
            os.remove(current["temp"])
            raise StorageError(f"blob {entry.path!r}: read {current['size']} bytes, the manifest says {entry.size}")
        os.replace(current["temp"], current["dest"])

    def _verified_chunks(self, namespace: str, files: list[tuple[Entry, str]],
                         located: dict[str, Location]) -> Iterator[tuple[int, pa.Buffer | None]]:
        reader = ChunkReader(self.files)
        for i, (entry, _dest) in enumerate(files):
            yield i, None  # opens the file, also when it is empty
            for n, digest in enumerate(entry.chunks):
                buffer = self._read_chunk(reader, digest, located, namespace, entry)
                if hashlib.sha256(buffer).hexdigest() != digest:
                    raise StorageError(
                        f"blob {entry.path!r} in {namespace!r}: chunk {n} ({digest[:12]}) read from "
                        f"{self.files.describe(located[digest].file)} is corrupt (sha256 mismatch)")
                yield i, buffer

    def _read_chunk(self, reader: ChunkReader, digest: str, located: dict[str, Location], namespace: str,
                    entry: Entry) -> pa.Buffer:
        for _ in range(3):
            loc = located.get(digest)
            if loc is not None:
                try:
                    return reader.read(loc)
                except FileNotFoundError:  # moved by gc or compaction: look again
                    reader.forget(loc.file)
            self.index.refresh()
            located.update(self.index.locate({digest}))
            if digest not in located:
                break
        raise StorageError(f"blob {entry.path!r} in {namespace!r}: chunk {digest[:12]} is missing from the "
                           "chunk table (deleted while in use, or the table is damaged)")

    def iter_bytes(self, namespace: str, path: str) -> Iterator[bytes]:
        """The verified content of one file, chunk by chunk (bounded memory)."""
        entry = self.entry(namespace, path)
        if entry is None or entry.is_dir:
            raise NotFound(f"no blob {path!r} in namespace {namespace!r}")
        self.index.refresh()
        located = self.index.locate(set(entry.chunks))
        hasher = hashlib.sha256()
        for _i, buffer in self._verified_chunks(namespace, [(entry, "")], located):
            if buffer is not None:
                hasher.update(buffer)
                yield buffer.to_pybytes()
        if hasher.hexdigest() != (entry.sha256 or EMPTY_SHA256):
            raise StorageError(f"blob {entry.path!r}: the file's sha256 does not match its manifest")

    def usage(self) -> dict[str, int]:
        """Logical bytes (sum over live files) against physical bytes (chunk files)."""
        self.manifest.refresh()
        self.index.refresh()
        live = self.manifest.live()
        files = live.filter(pc.equal(live.column("kind"), KIND_FILE))
        sizes = self.index.file_sizes()
        return {"files": files.num_rows,
                "logical_bytes": int(pc.sum(files.column("size")).as_py() or 0),
                "chunks": self.index.table().num_rows,
                "chunk_bytes": int(pc.sum(self.index.table().column("size")).as_py() or 0),
                "physical_bytes": int(sum(sizes.values()))}


def _flatten(batches: Iterator[list[Any]]) -> Iterator[Any]:
    for batch in batches:
        yield from batch


def _reset_after_fork() -> None:
    BlobStore._open = {}
    BlobStore._open_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
