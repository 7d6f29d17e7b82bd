"""Which data files a Delta table has, caught up incrementally and cheaply.

Readers of the blob tables fold in only the files added since their last look (and rebuild
only after files were removed, i.e. after gc or compaction). On a local root, "nothing new"
is one ``stat`` of the next commit's log file instead of a log listing.
"""

from __future__ import annotations

import threading
import time

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from sparkml_ops.errors import StorageError
from sparkml_ops.lake.location import RootLocation

FULL_CHECK_S = 30.0  # list the log at least this often anyway (log clean-up may remove files)


class DeltaFiles:
    """The current data files (relative paths and sizes) of one table (read-only handle)."""

    def __init__(self, location: RootLocation, table: str) -> None:
        self.location = location
        self.uri = location.table_uri(table)
        self.sizes: dict[str, int] = {}
        self._dt: DeltaTable | None = None
        self._seen_version = -1
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> tuple[list[str], list[str]]:
        """Catch up; returns (added paths, removed paths) since the previous refresh."""
        with self._lock:
            try:
                if self._dt is None:
                    self._dt = self._open()
                else:
                    if not self._may_have_moved():
                        return [], []
                    self._dt.update_incremental()
                self._checked_at = time.monotonic()
                actions = pa.table(self._dt.get_add_actions(flatten=True))
            except DeltaError as exc:
                raise StorageError(f"table {self.uri} cannot be read: {exc}") from exc
            self._seen_version = self._dt.version()
            sizes = dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(),
                             strict=True))
            added = [p for p in sizes if p not in self.sizes]
            removed = [p for p in self.sizes if p not in sizes]
            self.sizes = sizes
            return added, removed

    def force_check(self) -> None:
        """Make the next :meth:`refresh` look at the log even if nothing seems to have moved."""
        self._checked_at = 0.0

    def reset(self) -> None:
        with self._lock:
            self._dt = None
            self._seen_version = -1
            self.sizes = {}

    def _open(self) -> DeltaTable:
        try:
            return DeltaTable(self.uri, storage_options=self.location.storage_options or None)
        except DeltaError as exc:
            raise StorageError(f"table {self.uri} is missing or cannot be read: {exc}") from exc

    def _may_have_moved(self) -> bool:
        if time.monotonic() - self._checked_at > FULL_CHECK_S:
            return True
        return self.location.may_have_commit_after(self.uri, self._seen_version)


class CommitHandle:
    """A kept table handle for commits: opening a table replays its log, a kept one catches up."""

    def __init__(self, location: RootLocation, table: str) -> None:
        self.location = location
        self.uri = location.table_uri(table)
        self._dt: DeltaTable | None = None
        self.lock = threading.Lock()

    def get(self) -> DeltaTable:
        """Call with :attr:`lock` held."""
        if self._dt is None:
            self._dt = DeltaTable(self.uri, storage_options=self.location.storage_options or None)
        else:
            self._dt.update_incremental()
        return self._dt

    def drop(self) -> None:
        self._dt = None
