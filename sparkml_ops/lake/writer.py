"""Group commit: log calls append to the write-ahead log; a background thread commits.

Every flush turns all pending records into one Delta commit per table, tagged with the
writer's id and the last record's log sequence number, then drops the committed WAL
segments. Readers see rows not yet in their snapshot through
:meth:`GroupCommitWriter.uncommitted`, so a process always reads its own writes, committed or not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sparkml_ops.errors import StorageError
from sparkml_ops.lake.columns import columns_to_table
from sparkml_ops.lake.commit import TableCommitter
from sparkml_ops.lake.schemas import TABLES
from sparkml_ops.lake.snapshot import View
from sparkml_ops.lake.wal import Record, WriteAheadLog

_log = logging.getLogger(__name__)
_SEQ_TABLES = frozenset(name for name, spec in TABLES.items() if "seq" in spec.schema.names)


def each_table(action: Callable[[str], object], tables: Iterable[str]) -> None:
    """``action(table)`` for every table, side by side; raises the first failure once all ended.

    Commits and snapshot refreshes of different tables are independent Delta I/O that releases
    the GIL (a run's creation commits two tables). Plain threads, not a pool: a pool refuses
    work once the interpreter starts exiting, which is when the last flush runs.
    """
    names = list(tables)
    if len(names) == 1:
        action(names[0])
        return
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            action(name)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(name,), name=f"sparkml-ops-{name}") for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class GroupCommitWriter:
    """One per process and root. Thread-safe.

    Records move from *pending* (acknowledged, in the WAL) to *in flight* (being committed)
    and leave once committed. Readers pair a table snapshot with the records that snapshot
    does not hold yet — those above the LSN it has committed for this writer — so a read
    never waits on a commit and never sees a row twice or misses one.
    """

    def __init__(
        self,
        committer: TableCommitter,
        wal: WriteAheadLog,
        writer_id: str,
        *,
        interval_s: float,
        max_rows: int,
        on_committed: Callable[[set[str]], None],
        after_flush: Callable[[set[str]], None] | None = None,
    ) -> None:
        self._committer = committer
        self._wal = wal
        self.writer_id = writer_id
        self._interval_s = interval_s
        self._max_rows = max_rows
        self._on_committed = on_committed
        self._after_flush = after_flush
        self._lock = threading.Lock()  # guards the record lists, lsn and the WAL append; never held during Delta I/O
        self._flush_lock = threading.Lock()  # one flush at a time
        self._pending: list[Record] = []
        self._in_flight: list[Record] = []
        self._pending_rows = 0
        self._lsn = 0
        self._committed_lsn = 0
        self._last_stamp = 0
        self._wake = threading.Event()
        self._closed = False
        self.last_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="sparkml-ops-commit", daemon=True)
        self._thread.start()

    def stamp(self) -> int:
        """A nanosecond timestamp, strictly increasing within this writer (the ``seq`` column)."""
        with self._lock:
            return self._next_stamp()

    def append(self, table: str, columns: dict[str, list[Any]]) -> int:
        """Acknowledge rows: once this returns they survive a crash of this process.

        Returns the record's log sequence number (for :meth:`commit_through`).
        """
        if self._closed:
            raise StorageError("this writer is closed; open the store again to log")
        with self._lock:
            n = len(next(iter(columns.values()), []))
            if table in _SEQ_TABLES and "seq" not in columns:
                columns["seq"] = [self._next_stamp()] * n
            self._lsn += 1
            record = Record(self._lsn, table, columns)
            self._wal.append(record)
            self._pending.append(record)
            self._pending_rows += n
            full = self._pending_rows >= self._max_rows
        if full:
            self._wake.set()
        return record.lsn

    @property
    def last_lsn(self) -> int:
        """The log sequence number of the last acknowledged record."""
        return self._lsn

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def uncommitted(self, table: str, view: Callable[[], View]) -> tuple[View, list[Record]]:
        """A snapshot ``view()`` and the records of ``table`` it does not hold yet.

        ``view`` runs under this writer's lock: records leave the in-flight list only after
        the snapshots they went to published them, so the pair never misses nor repeats a row.
        """
        with self._lock:
            current = view()
            if not self._pending and not self._in_flight:
                return current, []
            floor = current.own_lsn
            return current, [r for r in (*self._in_flight, *self._pending) if r.table == table and r.lsn > floor]

    def commit_through(self, lsn: int) -> None:
        """Return once record ``lsn`` is committed: calls that arrive together share one commit."""
        with self._flush_lock:
            if self._committed_lsn < lsn:
                self._flush_locked()

    def wake(self) -> None:
        """Ask the commit thread to commit soon (the WAL already holds the rows)."""
        self._wake.set()

    def flush(self) -> set[str]:
        """Commit everything acknowledged so far; raises if the root cannot take it.

        Returns the tables committed to.
        """
        if not self.has_pending():
            return set()
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self) -> set[str]:
        with self._lock:
            batch, self._pending, self._pending_rows = self._pending, [], 0
            if not batch:
                return set()
            self._in_flight = batch
            segments = self._wal.rotate()
        by_table: dict[str, list[dict[str, list[Any]]]] = defaultdict(list)
        for record in batch:
            by_table[record.table].append(record.columns)
        last_lsn = batch[-1].lsn
        try:
            each_table(lambda table: self._committer.append(TABLES[table], columns_to_table(table, by_table[table]),
                                                            self.writer_id, last_lsn), by_table)
        except BaseException:
            with self._lock:  # back to the front of the queue: the next flush retries them
                self._pending = batch + self._pending
                self._pending_rows = sum(r.num_rows for r in self._pending)
                self._in_flight = []
            raise
        try:
            self._on_committed(set(by_table))  # snapshots publish the new rows (I/O, outside the lock)
        finally:
            with self._lock:
                self._in_flight = []
                self._committed_lsn = last_lsn
        self._wal.discard(segments)
        return set(by_table)

    def close(self) -> None:
        """Flush and stop; the WAL directory goes away only if everything committed."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        try:
            self.flush()
        finally:
            self._wal.close()

    def _next_stamp(self) -> int:
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            self._wake.wait(self._interval_s * (2 ** min(failures, 5)))
            self._wake.clear()
            if self._closed:
                return
            try:
                committed = self.flush()
                if committed and self._after_flush is not None:
                    with self._flush_lock:
                        self._after_flush(committed)
                failures = 0
                self.last_error = None
            except Exception as exc:  # keep the WAL; retry later with backoff
                failures += 1
                self.last_error = exc
                _log.warning("sparkml_ops background commit failed (will retry): %s", exc)
