"""Which Delta version of each table a query reads: now, or as of a version or an instant.

Both engines resolve ``as_of`` here, so they read the very same files.

* ``as_of=None``: every table at its current version.
* ``as_of=<datetime | ISO-8601 string>``: every table at its last commit at or before that
  instant (a naive time is local time, as in Python). Tables with no commit by then are empty.
* ``as_of=<int N>``: a root has no single version — each table has its own — so an integer
  is a version of the ``runs`` table, the root's clock (every run start, end and delete
  commits there): ``runs`` at exactly version N, every other table as of that commit — its
  timestamp, plus the rest of the group commit it belonged to (the writer commits a flush
  table by table, tagged with one app transaction ``(writer, lsn)``, which each commit's
  metadata repeats for ``DeltaTable.history()``).

A timestamp that falls inside a group commit (tens of milliseconds) may show part of it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Union

from deltalake.exceptions import DeltaError

from sparkml_ops import config
from sparkml_ops.errors import BadInput, NotFound, StorageError
from sparkml_ops.lake import delta
from sparkml_ops.lake.commit import APP_ID_PREFIX, TXN_METADATA_KEY
from sparkml_ops.lake.lake import MARKER_FILE
from sparkml_ops.lake.location import RootLocation, parse_root
from sparkml_ops.lake.schemas import TABLES

if TYPE_CHECKING:
    from deltalake import DeltaTable

AsOf = Union[int, datetime, str, None]  # noqa: UP007 - a runtime alias, py3.10-compatible

CLOCK_TABLE = "runs"
MISSING = -1  # version of a table that does not exist (yet) at the requested point


@dataclass(frozen=True)
class TableRead:
    """One table as a query reads it: its Delta version and data files (empty if none)."""

    table: str
    uri: str
    version: int
    files: tuple[str, ...]


def resolve_location(root: str | os.PathLike[str] | None) -> RootLocation:
    """A root to read: the argument, else mlflow's ``delta:`` tracking URI, else the configured root.

    Reading never creates a root: a local path that is not one is an error.
    """
    if root is None:
        import mlflow

        current = mlflow.get_tracking_uri()
        uri = current if current.startswith("delta:") else config.tracking_uri()
    else:
        uri = os.fspath(root)
    location = parse_root(uri, config.resolve("storage_options"))
    if location.is_local and not os.path.isfile(os.path.join(location.uri, MARKER_FILE)):
        raise NotFound(f"no sparkml_ops tracking root at {location.uri} (no {MARKER_FILE}); "
                       "log a run there first or pass the right root")
    return location


def parse_as_of(value: AsOf) -> int | datetime | None:
    """Validate ``as_of``: a non-negative int, a datetime, or an ISO-8601 string (or digits)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadInput(f"as_of={value!r} is not a version or a timestamp; give an int >= 0, a datetime or ISO text")
    if isinstance(value, int):
        if value < 0:
            raise BadInput(f"as_of={value} is negative; a table version is an int >= 0")
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+", text):  # digits are a version; a date needs dashes
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise BadInput(f"as_of={value!r} is neither a table version (an int) nor an ISO-8601 timestamp "
                           "such as '2026-11-20T12:00' or '2026-11-20T12:00:00+00:00'") from None
        return parsed if parsed.tzinfo else parsed.astimezone()
    raise BadInput(f"as_of={value!r} has type {type(value).__name__}; give an int version, a datetime or ISO text")


def open_table(location: RootLocation, table: str, version: int | None = None) -> DeltaTable | None:
    """The table (at ``version``), or None when it does not exist."""
    uri = location.table_uri(table)
    try:
        return delta.open_table(uri, version=version, storage_options=location.storage_options)
    except DeltaError as exc:
        if version is not None:
            raise BadInput(f"version {version} of table {table} cannot be read ({exc}); it may be newer than the "
                           "table or its log may have been cleaned up") from exc
        raise StorageError(f"table {uri} cannot be read: {exc}") from exc


def version_at(dt: DeltaTable, when: datetime, table: str) -> int:
    """Last version of ``dt`` committed at or before ``when`` (MISSING if none was)."""
    when_ms = int(when.timestamp() * 1000)
    latest = dt.version()
    limit = 32
    while True:
        history = dt.history(limit)  # newest first
        for commit in history:
            if commit["timestamp"] <= when_ms:
                return int(commit["version"])
        oldest = int(history[-1]["version"]) if history else latest
        if len(history) < limit or oldest == 0:
            if oldest == 0:
                return MISSING
            raise BadInput(f"as_of {when.isoformat()} is older than the retained history of table {table} "
                           f"(oldest version {oldest}); pick a later time")
        limit *= 4


def commit_info(dt: DeltaTable, version: int, table: str) -> dict:
    """The commit info of ``version`` of ``dt`` (timestamp, operation, our transaction metadata)."""
    latest = dt.version()
    if not 0 <= version <= latest:
        raise BadInput(f"as_of={version} is not a version of the {table} table (versions 0..{latest}); "
                       "an int as_of is a version of the runs table — see `sparkml-ops info`")
    for commit in dt.history(latest - version + 1):
        if int(commit["version"]) == version:
            return commit
    raise BadInput(f"version {version} of table {table} is no longer in its log; pick a later version or a timestamp")


def resolve_versions(location: RootLocation, as_of: AsOf) -> dict[str, int]:
    """Version of every table to read (MISSING for a table that does not exist at that point)."""
    point = parse_as_of(as_of)
    current: dict[str, DeltaTable | None] = {name: open_table(location, name) for name in TABLES}
    if point is None:
        return {name: (dt.version() if dt is not None else MISSING) for name, dt in current.items()}
    versions: dict[str, int] = {}
    if isinstance(point, int):
        clock = current[CLOCK_TABLE]
        if clock is None:
            raise NotFound(f"root {location.uri} has no {CLOCK_TABLE} table to take version {point} of")
        commit = commit_info(clock, point, CLOCK_TABLE)
        when = datetime.fromtimestamp(commit["timestamp"] / 1000, timezone.utc)
        versions[CLOCK_TABLE] = point
        flush = _transaction(commit)
    else:
        when, flush = point, None
    for name, dt in current.items():
        if name not in versions:
            versions[name] = MISSING if dt is None else version_at(dt, when, name)
            if flush is not None and dt is not None:
                versions[name] = _complete_flush(dt, versions[name], flush)
    return versions


def _transaction(commit: dict) -> tuple[str, int] | None:
    """The app transaction ``(app_id, lsn)`` of a commit written by sparkml_ops (from its metadata)."""
    app, _, lsn = str(commit.get(TXN_METADATA_KEY, "")).rpartition(":")
    return (app, int(lsn)) if app.startswith(APP_ID_PREFIX) and lsn.isdigit() else None


def _complete_flush(dt: DeltaTable, version: int, flush: tuple[str, int]) -> int:
    """Move past later commits of ``dt`` that belong to the same writer's flushes up to ``flush``."""
    app, lsn = flush
    if version >= dt.version():
        return version
    later = sorted(dt.history(dt.version() - version), key=lambda c: int(c["version"]))  # versions after `version`
    for commit in later:
        txn = _transaction(commit)
        if txn is None or txn[0] != app or txn[1] > lsn:
            break
        version = int(commit["version"])
    return version


def table_read(location: RootLocation, table: str, version: int) -> TableRead:
    """The data files of ``table`` at ``version``."""
    uri = location.table_uri(table)
    if version == MISSING:
        return TableRead(table, uri, MISSING, ())
    dt = open_table(location, table, version)
    if dt is None:
        return TableRead(table, uri, MISSING, ())
    return TableRead(table, uri, version, tuple(dt.file_uris()))
