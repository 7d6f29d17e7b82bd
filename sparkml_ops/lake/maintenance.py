"""Keep tables healthy: compaction, checkpoints, log clean-up and vacuum.

Group commit keeps commits few; compaction folds their small files into large ones, and
checkpoints bound how much log a reader replays. The writer runs :func:`compact_if_needed`
after its flushes, so nobody has to run anything; ``sparkml-ops maintain`` does it all on
demand, vacuum included (vacuum is what ends time travel to older versions, so it is
never automatic).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TABLES

_log = logging.getLogger(__name__)

TARGET_FILE_SIZE = 128 * 1024 * 1024
COMPACTION_LOCK = "_sparkml_ops_compaction.lock"  # a leading "_": Delta readers and vacuum skip it


@dataclass
class TableReport:
    table: str
    version: int
    files_before: int
    files_after: int
    files_vacuumed: int

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


def _open(location: RootLocation, table: str) -> DeltaTable:
    return DeltaTable(location.table_uri(table), storage_options=location.storage_options or None)


@contextlib.contextmanager
def compaction_turn(location: RootLocation, table: str, *, wait: bool) -> Iterator[bool]:
    """Yields True while this process is the only one compacting ``table``.

    delta-rs (1.6) lets two OPTIMIZE commits that read the same version both remove the same
    files (removes without data change never conflict), each adding its own compacted copy:
    every row of those files is then there twice. So compactions take turns, through a lock
    file in the table directory (hidden from Delta readers and vacuum). An object store has
    no such lock: there the turn is never granted and only ``sparkml-ops maintain`` (run by
    one operator at a time) compacts.
    """
    if not location.is_local:
        yield False
        return
    path = os.path.join(location.table_uri(table), COMPACTION_LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # another process is compacting this table now
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def compact_if_needed(location: RootLocation, table: str, file_count: int, min_files: int,
                      target_size: int = TARGET_FILE_SIZE) -> bool:
    """Compact ``table`` when it has at least ``min_files`` data files. Never raises.

    Files of ``target_size`` or more are left as they are (delta-rs skips them).
    """
    if file_count < min_files:
        return False
    try:
        with compaction_turn(location, table, wait=False) as granted:
            if not granted:
                return False
            dt = _open(location, table)  # opened inside the turn: sees the previous compaction
            dt.optimize.compact(target_size=target_size)
            dt.create_checkpoint()
            return True
    except (CommitFailedError, DeltaError, OSError) as exc:  # another writer compacted: fine
        _log.info("background compaction of %s skipped: %s", table, exc)
        return False


def maintain(location: RootLocation, *, vacuum: bool = True, retention_hours: int = 168) -> list[TableReport]:
    """Compact, checkpoint, clean the log and (optionally) vacuum every table.

    Then builds the root's current-state tables (:func:`build_current_state`) afresh, so that
    searches read the latest state of each run instead of every row ever logged.
    """
    reports = []
    for table in TABLES:
        dt = _open(location, table)
        before = len(dt.file_uris())
        with compaction_turn(location, table, wait=True):  # after any background compaction
            _open(location, table).optimize.compact(target_size=TARGET_FILE_SIZE)
        dt = _open(location, table)
        dt.create_checkpoint()
        dt.cleanup_metadata()
        vacuumed = 0
        if vacuum:
            vacuumed = len(dt.vacuum(retention_hours=retention_hours, dry_run=False,
                                     enforce_retention_duration=retention_hours >= 168))
        dt = _open(location, table)
        reports.append(TableReport(table, dt.version(), before, len(dt.file_uris()), vacuumed))
    return reports


def build_current_state(location: RootLocation) -> dict[str, str | int | float] | None:
    """Rebuild the current-state tables of a local root (None for object-store roots)."""
    from sparkml_ops.lake import current

    report = current.build(location)
    return None if report is None else asdict(report)
