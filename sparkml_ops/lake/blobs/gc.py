"""Garbage collection of chunks: mark, wait, sweep; then compaction and orphan clean-up.

Protocol (W = ``wait_s`` > :data:`~sparkml_ops.lake.blobs.store.VERIFY_TTL_S`):

1. **Mark** at time T: every chunk that no live manifest entry references and whose newest
   copy is older than ``min_age_s`` gets a mark ``(hash, cutoff = T - min_age)``.
2. **Wait** W after the mark commit.
3. **Sweep** at time R >= mark + W: re-read the manifest; a marked chunk that is referenced
   now and has no copy created since ``cutoff`` is *cleared*; otherwise its copies created
   before ``cutoff`` are deleted (files rewritten without them) and the mark is *swept*.

An upload, right before its manifest commit (and within VERIFY_TTL_S of it), checks that
every chunk it references has a copy created at or after the cutoff of any pending mark,
writing a fresh copy otherwise. Why no referenced chunk is lost: if the upload's manifest
commit C happened before the sweep's read R, the sweep sees the reference and clears. If
C > R, the upload checked at C - VERIFY_TTL_S > R - W >= mark commit, so it saw the mark
and its chunk has a copy created after the cutoff, which the sweep never deletes. Copies
written by an upload in progress are also unreferenced, but they are invisible until the
upload's chunk commit and younger than ``min_age_s`` afterwards.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import RemoveAction

from sparkml_ops.errors import BadInput, CommitConflict
from sparkml_ops.lake.blobs.chunks import ChunkReader, ChunkWriter, Location, commit_actions, now_ms
from sparkml_ops.lake.blobs.marks import CLEARED, SWEPT
from sparkml_ops.lake.blobs.store import VERIFY_TTL_S, BlobStore
from sparkml_ops.lake.blobs.tables import CHUNKS, FILES, MARKS, storage_options
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import retry

_log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 30.0
MIN_WAIT_S = 5.0
SMALL_FILE_BYTES = 16 * 1024 * 1024
COMPACT_MIN_FILES = 8


@dataclass
class GcReport:
    marked: int = 0
    cleared: int = 0
    swept_chunks: int = 0
    reclaimed_bytes: int = 0
    files_rewritten: int = 0
    files_removed: int = 0
    files_compacted: int = 0
    orphan_files_removed: int = 0
    waited_s: float = 0.0
    physical_bytes_before: int = 0
    physical_bytes_after: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def gc(location: RootLocation, *, min_age_s: float = 0.0, wait_s: float = DEFAULT_WAIT_S,
       compact: bool = True, orphan_hours: int = 24, sleep: Callable[[float], None] = time.sleep) -> GcReport:
    """Reclaim chunks no live manifest entry references (never one an upload relies on)."""
    if wait_s < MIN_WAIT_S:
        raise BadInput(f"gc wait {wait_s}s is too short; it must be at least {MIN_WAIT_S}s "
                       f"(uploads re-check GC marks every {VERIFY_TTL_S}s)")
    if min_age_s < 0:
        raise BadInput(f"gc min_age_s {min_age_s} must be >= 0")
    store = BlobStore.open(location)
    report = GcReport(physical_bytes_before=store.usage()["physical_bytes"])
    mark(store, min_age_s=min_age_s, wait_s=wait_s, report=report)
    due_in = _seconds_until_due(store, wait_s)
    if due_in is not None and due_in > 0:
        sleep(due_in)
        report.waited_s = due_in
    # a CommitConflict means another gc (or upload) changed the chunks: re-plan from scratch
    retry(lambda: sweep(store, wait_s=wait_s, report=report), what="sweep blob chunks", attempts=6)
    if compact:
        retry(lambda: compact_chunks(store, report=report), what="compact blob chunks", attempts=6)
    report.orphan_files_removed = _maintain_tables(location, orphan_hours)
    report.physical_bytes_after = store.usage()["physical_bytes"]
    return report


def mark(store: BlobStore, *, min_age_s: float, wait_s: float, report: GcReport) -> None:
    marked_at = now_ms()
    store.manifest.refresh()
    store.index.refresh()
    store.marks.refresh()
    referenced = store.manifest.referenced()
    index = store.index.table()
    if index.num_rows == 0:
        return
    newest = index.group_by("hash").aggregate([("created_ms", "max")])
    cutoff = marked_at - int(min_age_s * 1000)
    candidates = newest.filter(pc.and_(
        pc.invert(pc.is_in(newest.column("hash"), value_set=referenced)),
        pc.less(newest.column("created_ms_max"), cutoff),
    ))
    pending = store.marks.pending().column("hash")
    candidates = candidates.filter(pc.invert(pc.is_in(candidates.column("hash"), value_set=pending)))
    hashes = candidates.column("hash").to_pylist()
    if not hashes:
        return
    gc_id = uuid.uuid4().hex
    store.marks.append(hashes, state="marked", cutoff_ms=cutoff, marked_ms=marked_at, gc_id=gc_id,
                       seq=store.manifest.next_seq())
    report.marked += len(hashes)
    if now_ms() - marked_at > 1000 * (wait_s - VERIFY_TTL_S):
        # The marks became visible too late for the wait to cover them: withdraw them.
        _log.warning("gc mark commit was slow; withdrawing %d marks", len(hashes))
        store.marks.append(hashes, state=CLEARED, cutoff_ms=cutoff, marked_ms=marked_at, gc_id=gc_id,
                           seq=store.manifest.next_seq())
        report.marked -= len(hashes)


def _seconds_until_due(store: BlobStore, wait_s: float) -> float | None:
    pending = store.marks.pending()
    if pending.num_rows == 0:
        return None
    earliest = pc.min(pending.column("marked_ms")).as_py()
    return max(0.0, (earliest + wait_s * 1000 - now_ms()) / 1000.0)


def sweep(store: BlobStore, *, wait_s: float, report: GcReport) -> None:
    read_at = now_ms()
    store.manifest.refresh()
    store.index.refresh()
    store.marks.refresh()
    pending = store.marks.pending()
    due = pending.filter(pc.less_equal(pending.column("marked_ms"), read_at - int(wait_s * 1000)))
    if due.num_rows == 0:
        return
    referenced = store.manifest.referenced()
    index = store.index.table()
    newest = store.index.newest_created(set(due.column("hash").to_pylist()))
    # Referenced and without a copy made since the mark: keep everything (clear the mark).
    # Unreferenced, or referenced through a fresh copy: the copies older than the cutoff go.
    fresh = pa.array([newest.get(h, -1) >= c for h, c in zip(due.column("hash").to_pylist(),
                                                              due.column("cutoff_ms").to_pylist(), strict=True)])
    keep = pc.and_(pc.is_in(due.column("hash"), value_set=referenced), pc.invert(fresh))
    cleared = due.filter(keep)
    doomed = due.filter(pc.invert(keep))
    cutoffs = dict(zip(doomed.column("hash").to_pylist(), doomed.column("cutoff_ms").to_pylist(), strict=True))
    rows = index.filter(pc.is_in(index.column("hash"), value_set=doomed.column("hash")))
    dead: dict[str, set[tuple[int, int]]] = defaultdict(set)
    dead_bytes = 0
    for h, created, file, rg, row, size in zip(*(rows.column(c).to_pylist() for c in
                                                 ("hash", "created_ms", "file", "rg", "row", "size")), strict=True):
        if created < cutoffs[h]:
            dead[file].add((rg, row))
            dead_bytes += size
    if dead:
        rewritten, removed = _rewrite_without(store, index, dead, f"gc-{uuid.uuid4().hex}")
        report.files_rewritten += rewritten
        report.files_removed += removed
        report.swept_chunks += sum(len(v) for v in dead.values())
        report.reclaimed_bytes += dead_bytes
    seq = store.manifest.next_seq()
    gc_id = uuid.uuid4().hex
    store.marks.append(cleared.column("hash").to_pylist(), state=CLEARED, cutoff_ms=cleared.column("cutoff_ms")
                       .to_pylist(), marked_ms=cleared.column("marked_ms").to_pylist(), gc_id=gc_id, seq=seq)
    store.marks.append(doomed.column("hash").to_pylist(), state=SWEPT, cutoff_ms=doomed.column("cutoff_ms")
                       .to_pylist(), marked_ms=doomed.column("marked_ms").to_pylist(), gc_id=gc_id, seq=seq)
    report.cleared += cleared.num_rows


def _rewrite_without(store: BlobStore, index: pa.Table, drop: dict[str, set[tuple[int, int]]],
                     txn_id: str, *, dedupe: bool = False) -> tuple[int, int]:
    """Replace the files in ``drop`` by copies without the dropped rows; one commit.

    Returns (files rewritten with survivors, files removed outright). Survivors keep their
    hash, creation time and upload id. Physical files are deleted after the commit.
    """
    per_file = index.filter(pc.is_in(index.column("file"), value_set=pa.array(sorted(drop), pa.string())))
    survivors: list[tuple[str, str, int, int, int]] = []
    rewritten = removed = 0
    for file in sorted(drop):
        mine = per_file.filter(pc.equal(per_file.column("file"), file))
        keep = [(h, file, rg, row, c) for h, rg, row, c in zip(
            *(mine.column(c).to_pylist() for c in ("hash", "rg", "row", "created_ms")), strict=True)
            if (rg, row) not in drop[file]]
        survivors.extend((h, f, rg, row, c) for h, f, rg, row, c in keep)
        if keep:
            rewritten += 1
        else:
            removed += 1
    if dedupe:
        newest: dict[str, tuple[str, str, int, int, int]] = {}
        for item in survivors:
            if item[0] not in newest or item[4] > newest[item[0]][4]:
                newest[item[0]] = item
        survivors = list(newest.values())
    writer = ChunkWriter(store.files, txn_id)
    reader = ChunkReader(store.files)
    upload_ids = _upload_ids(store, per_file)
    try:
        for h, file, rg, row, created in sorted(survivors, key=lambda s: (s[1], s[2], s[3])):
            data = reader.read(Location(file, rg, row))
            writer.written.discard(h)  # duplicates of one hash are kept as they were
            writer.add(h, data, created_ms=created, upload_id=upload_ids.get((file, rg, row)))
        adds = writer.close()
    except FileNotFoundError as exc:
        writer.abort()
        raise CommitConflict(f"a chunk file vanished while gc rewrote it: {exc}") from exc
    except BaseException:
        writer.abort()
        raise
    stamp = now_ms()
    removes = [RemoveAction(f, True, stamp, size) for f, size in store.index.file_sizes().items() if f in drop]
    try:
        commit_actions(store.location, adds, removes, app_id=txn_id, handle=store.chunk_commits)
    except BaseException:
        writer.abort()
        raise
    for file in drop:
        store.files.delete(file)
    store.index.refresh()
    return rewritten, removed


def _upload_ids(store: BlobStore, rows: pa.Table) -> dict[tuple[str, int, int], str]:
    """Upload ids are not in the index; read them per file (small column)."""
    import pyarrow.parquet as pq

    out: dict[tuple[str, int, int], str] = {}
    for file in set(rows.column("file").to_pylist()):
        parquet = pq.ParquetFile(store.files.open_input(file))
        row_group_sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
        ids = parquet.read(columns=["upload_id"]).column(0).to_pylist()
        position = 0
        for rg, count in enumerate(row_group_sizes):
            for row in range(count):
                out[(file, rg, row)] = ids[position]
                position += 1
    return out


def compact_chunks(store: BlobStore, *, report: GcReport) -> None:
    """Merge small chunk files (from many small uploads) into larger ones; drops duplicate copies."""
    store.index.refresh()
    sizes = store.index.file_sizes()
    small = sorted(f for f, size in sizes.items() if size < SMALL_FILE_BYTES)
    if len(small) < COMPACT_MIN_FILES:
        return
    _rewrite_without(store, store.index.table(), {f: set() for f in small}, f"compact-{uuid.uuid4().hex}",
                     dedupe=True)
    report.files_compacted += len(small)


def _maintain_tables(location: RootLocation, orphan_hours: int) -> int:
    """Checkpoint and compact the small tables; drop files of crashed uploads older than ``orphan_hours``."""
    removed = 0
    for spec in (FILES, MARKS):
        try:
            dt = DeltaTable(location.table_uri(spec.name), storage_options=storage_options(location))
            if len(dt.file_uris()) >= COMPACT_MIN_FILES:
                dt.optimize.compact()
                dt = DeltaTable(location.table_uri(spec.name), storage_options=storage_options(location))
            dt.create_checkpoint()
            dt.vacuum(retention_hours=168, dry_run=False, enforce_retention_duration=False)
        except (CommitFailedError, DeltaError, OSError) as exc:  # another gc or writer got there first: fine
            _log.info("blob table maintenance of %s skipped: %s", spec.name, exc)
    try:
        dt = DeltaTable(location.table_uri(CHUNKS.name), storage_options=storage_options(location))
        removed = len(dt.vacuum(retention_hours=orphan_hours, dry_run=False, enforce_retention_duration=False,
                                full=True))
    except (CommitFailedError, DeltaError, OSError) as exc:
        _log.info("orphan clean-up of %s skipped: %s", CHUNKS.name, exc)
    return removed


