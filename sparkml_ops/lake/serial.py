"""Serializable, synchronous commits to one table: compare-and-swap on the Delta log.

Group commit (``writer.py``) suits logging, where appends never conflict. A registry needs
more: two processes must not both take version 7 of a model, nor both create the same
name. Here every commit is validated against the rows at Delta version ``v`` and then
written *exactly* as version ``v + 1`` (delta-rs with no commit retries: the log's
put-if-absent on the next JSON file is the lock). If another process got there first the
commit fails with :class:`CommitConflict`, and the caller re-reads and re-validates. Every
row a commit writes carries that commit's version as ``seq``, so the order of rows is the
order of the log, identical in every process, whatever the clocks say.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pyarrow as pa
from deltalake import CommitProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from sparkml_ops.errors import CommitConflict, StorageError
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import retry
from sparkml_ops.lake.schemas import TABLES
from sparkml_ops.lake.snapshot import TableSnapshot

T = TypeVar("T")
MAX_CONFLICTS = 200  # 8 busy writers on one model need a few dozen at worst


class SerialTable(TableSnapshot):
    """A table snapshot that also commits, one validated commit at a time."""

    def __init__(self, location: RootLocation, name: str) -> None:
        super().__init__(location, TABLES[name])

    def new_rows(self, seen: set[str], *, refresh: bool = True) -> tuple[int, list[pa.Table], bool]:
        """The Delta version now read, the rows of its files not in ``seen`` (which is updated),
        and whether a seen file is gone (compaction rewrote the table: rebuild from all rows)."""
        if refresh or self._dt is None:
            self.refresh()
        with self._lock:
            version, files = self.version, dict(self._files)
        gone = any(uri not in files for uri in seen)
        if gone:
            seen.clear()
        fresh = [table for uri, table in files.items() if uri not in seen]
        seen.update(files)
        return version, fresh, gone

    def commit_after(self, version: int, data: pa.Table) -> int:
        """Append ``data`` as Delta version ``version + 1`` exactly; returns it.

        Raises :class:`CommitConflict` when the table moved past ``version`` (in this process
        or another): re-read, re-validate, try again.
        """
        new_version = version + 1
        data = data.set_column(data.schema.get_field_index("seq"), "seq",
                               pa.array([new_version] * data.num_rows, type=pa.int64()))
        with self._lock:
            if self._dt is None or self._dt.version() != version:
                raise CommitConflict(f"table {self.uri} moved past version {version}")
            try:
                write_deltalake(
                    self._dt, data, mode="append",
                    commit_properties=CommitProperties(max_commit_retries=0),
                    storage_options=self.location.storage_options or None,
                )
            except CommitFailedError as exc:  # the handle is intact: the next refresh catches it up
                raise CommitConflict(f"table {self.uri}: version {new_version} was taken by another writer") from exc
            except (DeltaError, OSError) as exc:
                self._dt = None
                raise StorageError(f"cannot commit to table {self.uri}: {exc}") from exc
            if self._dt.version() != new_version:  # never expected: refuse to guess what was written
                self._dt = None
                raise StorageError(f"table {self.uri}: commit landed at an unexpected version")
            self._checked_at = time.monotonic()
            self._load_files()
        return new_version


def serialized(table: SerialTable, sync: Callable[[], int], attempt: Callable[[], tuple[pa.Table | None, T]]) -> T:
    """Run ``attempt()`` until its rows commit right after the version ``sync()`` caught up to.

    ``sync`` brings the caller's state up to the table's newest version and returns it;
    ``attempt`` validates against that state and returns the rows to commit (None: nothing to
    write) and its result. A conflict re-runs both on the newer state, so the validation and
    the write are one atomic step, across processes.
    """

    def once() -> T:
        version = sync()
        rows, result = attempt()
        if rows is not None and rows.num_rows:
            table.commit_after(version, rows)
        return result

    return cast(T, retry(once, what=f"commit to table {table.uri}", attempts=MAX_CONFLICTS, base_s=0.001, cap_s=0.05))


def rows_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts, missing columns null) as an Arrow table of ``name``'s schema."""
    schema = TABLES[name].schema
    return pa.Table.from_pydict({f: [r.get(f) for r in rows] for f in schema.names}, schema=schema)
