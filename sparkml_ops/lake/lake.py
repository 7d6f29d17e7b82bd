"""A tracking root opened by this process: tables, snapshots, the writer and recovery.

``Lake.open(location)`` returns the one instance for a root in this process (so every
store object of a process reads its own writes). Opening a root replays the logs of dead
writers, exactly once, before anything else reads it; while it stays open, a background
thread keeps doing so, so a long-lived process (a server, a notebook, a stream) sees a killed
writer's acknowledged rows within about a second without a restart.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from deltalake import DeltaTable

from sparkml_ops import config
from sparkml_ops.errors import StorageError
from sparkml_ops.lake.commit import TableCommitter, app_id
from sparkml_ops.lake.current import compaction_target
from sparkml_ops.lake.layout import MARKER_FILE, check_layout, read_marker, write_marker
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.maintenance import TARGET_FILE_SIZE, compact_if_needed
from sparkml_ops.lake.schemas import TABLES
from sparkml_ops.lake.snapshot import TableSnapshot
from sparkml_ops.lake.wal import WriteAheadLog, orphaned_logs, read_records
from sparkml_ops.lake.writer import GroupCommitWriter, columns_to_table, each_table

_log = logging.getLogger(__name__)


class Lake:
    _open: ClassVar[dict[RootLocation, Lake]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, location: RootLocation) -> None:
        self.location = location
        self.committer = TableCommitter(location, checkpoint_interval=config.resolve("checkpoint_interval"))
        self.snapshots = {name: TableSnapshot(location, spec) for name, spec in TABLES.items()}
        self._tails: dict[str, TableSnapshot] = {}  # rows outside a current-state build, per table
        self._tails_lock = threading.Lock()
        self._writer: GroupCommitWriter | None = None
        self._writer_lock = threading.Lock()
        self._initialise_root()
        self.recovered_on_open = self.recover()  # rows of dead writers replayed by opening
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._watch_for_dead_writers, name="sparkml-ops-recovery",
                                         daemon=True)
        self._watcher.start()

    @classmethod
    def open(cls, location: RootLocation) -> Lake:
        with cls._open_lock:
            lake = cls._open.get(location)
            if lake is None:
                lake = cls(location)
                cls._open[location] = lake
            return lake

    @classmethod
    def opened(cls, location: RootLocation) -> Lake | None:
        """The instance for ``location`` if this process already opened it (never opens one)."""
        with cls._open_lock:
            return cls._open.get(location)

    # -- writing -----------------------------------------------------------------------

    def append(self, table: str, columns: dict[str, list[Any]]) -> int:
        """Acknowledge rows for ``table`` (column name -> values); durable on return.

        Returns the record's log sequence number, for :meth:`commit_through`.
        """
        return self.writer().append(table, columns)

    def commit_through(self, lsn: int) -> None:
        """Return once record ``lsn`` is committed, so every process on the root sees it.

        For creations (an experiment, a run) whose id the caller may hand to another process at
        once; concurrent calls share one commit. Plain logging stays buffered.
        """
        self.writer().commit_through(lsn)

    def commit_now(self) -> None:
        """Commit everything this process acknowledged so far (see :meth:`commit_through`)."""
        writer = self.writer()
        writer.commit_through(writer.last_lsn)

    def commit_soon(self) -> None:
        """Ask for a commit now rather than at the next interval (no waiting)."""
        if self._writer is not None:
            self._writer.wake()

    def stamp(self) -> int:
        return self.writer().stamp()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def writer(self) -> GroupCommitWriter:
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = self._start_writer()
        return self._writer

    def close(self) -> None:
        self._closing.set()
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with Lake._open_lock:
            if Lake._open.get(self.location) is self:
                del Lake._open[self.location]

    # -- reading -----------------------------------------------------------------------

    def read(self, table: str, *, refresh: bool = True) -> pa.Table:
        """Committed rows plus this process's pending rows, without duplicates."""
        return self.read_keyed(table, refresh=refresh)[1]

    def read_keyed(self, table: str, *, refresh: bool = True) -> tuple[tuple[int, ...], pa.Table]:
        """Like :meth:`read`, with a key that changes whenever the rows do (for caches).

        Refreshing never waits on this process's commits: rows this process acknowledged but
        the snapshot does not hold yet are added from the writer, matched by log sequence number.
        """
        return self._with_uncommitted(table, self.snapshots[table], refresh)

    def read_tail(self, table: str, covered: frozenset[str]) -> tuple[tuple[int, ...], pa.Table]:
        """Like :meth:`read_keyed`, without the rows of the data files ``covered``.

        For readers that hold those rows elsewhere (a current-state build): this is what was
        committed after it was built, plus this process's uncommitted rows. A file rewritten by
        compaction since then counts as new (its rows come again: readers keep the latest).
        """
        with self._tails_lock:
            snapshot = self._tails.get(table)
            if snapshot is None or snapshot.exclude != covered:
                snapshot = TableSnapshot(self.location, TABLES[table], exclude=covered)
                if self._writer is not None:
                    snapshot.track_writer(app_id(self._writer.writer_id))
                self._tails[table] = snapshot
        key, rows = self._with_uncommitted(table, snapshot, True)
        return (id(snapshot), *key), rows

    def _with_uncommitted(self, table: str, snapshot: TableSnapshot,
                          refresh: bool) -> tuple[tuple[int, ...], pa.Table]:
        if refresh or snapshot.generation == 0:
            snapshot.refresh()
        writer = self._writer
        if writer is None:
            return (snapshot.generation, 0, 0), snapshot.table()
        view, records = writer.uncommitted(table, snapshot.view)
        committed = snapshot.schema_table(view)
        if not records:
            return (view.generation, 0, 0), committed
        key = (view.generation, records[0].lsn, records[-1].lsn)
        return key, pa.concat_tables([committed, columns_to_table(table, [r.columns for r in records])])

    def _all_snapshots(self, table: str) -> list[TableSnapshot]:
        with self._tails_lock:
            tail = self._tails.get(table)
        return [self.snapshots[table]] + ([tail] if tail is not None else [])

    # -- recovery ----------------------------------------------------------------------

    def recover(self) -> int:
        """Replay logs of dead writers into the tables; returns the rows replayed."""
        replayed = 0
        try:
            orphans = list(orphaned_logs(self.location.wal_dir()))
        except OSError:
            return 0
        for orphan in orphans:
            try:
                replayed += self._replay(orphan.writer_id, orphan.directory)
            except Exception:
                orphan.release()
                raise
            orphan.remove()
        return replayed

    def _watch_for_dead_writers(self) -> None:
        interval = config.resolve("recovery_interval_ms") / 1000.0
        while not self._closing.wait(interval):
            try:
                if self.recover():
                    for table in TABLES:
                        for snapshot in self._all_snapshots(table):
                            snapshot.refresh_if_open()
            except Exception as exc:  # a read-only or unreachable root: try again next time
                _log.debug("sparkml_ops recovery check failed: %s", exc)

    def _replay(self, writer_id: str, directory: Path) -> int:
        records = read_records(directory)
        by_table: dict[str, list] = {}
        for record in records:
            by_table.setdefault(record.table, []).append(record)
        replayed = 0
        for table, table_records in by_table.items():
            done = self.committer.committed_version(table, writer_id)
            todo = [r for r in table_records if r.lsn > done]
            if todo:
                data = columns_to_table(table, [r.columns for r in todo])
                self.committer.append(TABLES[table], data, writer_id, todo[-1].lsn)
                replayed += data.num_rows
        if replayed:
            _log.info("sparkml_ops recovered %d rows from writer %s", replayed, writer_id)
        return replayed

    # -- set-up ------------------------------------------------------------------------

    def _start_writer(self) -> GroupCommitWriter:
        writer_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._compact_min_files = config.resolve("compact_min_files")  # read once, not on every flush
        wal = WriteAheadLog(self.location.wal_dir() / writer_id, fsync=config.resolve("wal_fsync"))
        writer = GroupCommitWriter(
            self.committer,
            wal,
            writer_id,
            interval_s=config.resolve("flush_interval_ms") / 1000.0,
            max_rows=config.resolve("flush_max_rows"),
            on_committed=self._after_commit,
            after_flush=self._maintain_after_flush,
        )
        for snapshot in self.snapshots.values():
            snapshot.track_writer(app_id(writer_id))
        with self._tails_lock:
            for snapshot in self._tails.values():
                snapshot.track_writer(app_id(writer_id))
        atexit.register(self._close_quietly)
        return writer

    def _after_commit(self, tables: set[str]) -> None:
        def refresh(table: str) -> None:
            for snapshot in self._all_snapshots(table):
                snapshot.refresh_if_open()

        each_table(refresh, tables)  # a failed one: the next read retries

    def _maintain_after_flush(self, tables: set[str]) -> None:
        """Runs on the commit thread, outside the locks readers take."""
        for table in tables:
            snapshot = self.snapshots[table]
            files = snapshot.file_count if snapshot.version >= 0 else self.committer.file_count(table)
            if files < self._compact_min_files:
                continue
            # files a current-state build covers stay: rewritten, their rows would all be tail again
            target = compaction_target(self.location, table, TARGET_FILE_SIZE)
            if compact_if_needed(self.location, table, files, self._compact_min_files, target):
                for opened in self._all_snapshots(table):
                    opened.refresh_if_open()

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception as exc:  # at exit the WAL keeps the rows for the next process
            _log.warning("sparkml_ops could not commit at exit (the write-ahead log keeps the data): %s", exc)

    def _initialise_root(self) -> None:
        if self.location.is_local:
            self._initialise_local_root(Path(self.location.uri))
        else:
            check_layout(self.location)  # before creating anything in an older (or newer) root
            self.committer.create_tables()

    def _initialise_local_root(self, root: Path) -> None:
        content = read_marker(root)
        if content is not None:
            layout = content.get("layout_version")
            if not isinstance(layout, int):
                raise StorageError(f"{root / MARKER_FILE} records layout version {layout!r}, not a number; "
                                   "the root is damaged")
            check_layout(self.location, layout)  # the marker: no table opened for an old root
            check_layout(self.location)  # the tables' own property, as for object-store roots
            missing = [n for n in TABLES if not DeltaTable.is_deltatable(self.location.table_uri(n))]
            lost = [n for n in missing if n in content.get("tables", [])]
            if lost:  # recreating them empty would silently drop data
                raise StorageError(
                    f"root {root} is damaged: tables {lost} are missing or not Delta tables; "
                    "restore them from a backup (nothing was changed)"
                )
            if missing:  # tables added by a newer release of the same layout
                if not os.access(root, os.W_OK):
                    raise StorageError(f"root {root} lacks tables {missing} and is read-only")
                self.committer.create_tables()
                write_marker(root)
            return
        if root.exists() and (not root.is_dir() or any(p.name != "_wal" for p in root.iterdir())):
            raise StorageError(
                f"{root} exists and is not a sparkml_ops tracking root (no {MARKER_FILE}); "
                "choose an empty or new directory"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.committer.create_tables()
            write_marker(root)
        except OSError as exc:
            raise StorageError(f"cannot create tracking root {root}: {exc}") from exc


def _reset_after_fork() -> None:
    # delta-rs runtimes and our commit thread do not survive fork: start afresh in the child.
    Lake._open = {}
    Lake._open_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
