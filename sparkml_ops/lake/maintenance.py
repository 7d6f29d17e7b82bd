"""Keep tables healthy: compaction, checkpoints, log clean-up and vacuum.

Group commit keeps commits few; compaction folds their small files into large ones, and
checkpoints bound how much log a reader replays. The writer runs :func:`compact_if_needed`
after its flushes, so nobody has to run anything; ``sparkml-ops maintain`` does it all on
demand, vacuum included (vacuum is what ends time travel to older versions, so it is
never automatic).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.schemas import TABLES

_log = logging.getLogger(__name__)

TARGET_FILE_SIZE = 128 * 1024 * 1024


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


def compact_if_needed(location: RootLocation, table: str, file_count: int, min_files: int) -> bool:
    """Compact ``table`` when it has at least ``min_files`` data files. Never raises."""
    if file_count < min_files:
        return False
    try:
        dt = _open(location, table)
        dt.optimize.compact(target_size=TARGET_FILE_SIZE)
        dt.create_checkpoint()
        return True
    except (CommitFailedError, DeltaError, OSError) as exc:  # another writer compacted: fine
        _log.info("background compaction of %s skipped: %s", table, exc)
        return False


def maintain(location: RootLocation, *, vacuum: bool = True, retention_hours: int = 168) -> list[TableReport]:
    """Compact, checkpoint, clean the log and (optionally) vacuum every table."""
    reports = []
    for table in TABLES:
        dt = _open(location, table)
        before = len(dt.file_uris())
        dt.optimize.compact(target_size=TARGET_FILE_SIZE)
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
