"""The layout version of a root, kept as a Delta table property, and its in-place migration.

Layout 1 (releases up to issue 11) recorded its version only in ``_sparkml_ops.json`` at the
top of a local root and in each table's free-text description; object-store roots carried
none. From layout 2 every table carries the property :data:`LAYOUT_PROPERTY`, so any root —
local or on an object store — says which layout wrote it, and any Delta reader can see it.

``migrate`` upgrades a layout-1 root in place. Layouts 1 and 2 have the same tables, columns
and rows; the upgrade adds the property to each table with a metadata-only commit (no data
file is rewritten or removed, so a reader at any version keeps reading), then rewrites the
local marker last, atomically. It is idempotent: an interrupted migration is finished by
running it again, and a process opening the root meanwhile is refused with a message that
names the command.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from sparkml_ops.errors import StorageError
from sparkml_ops.lake.location import RootLocation
from sparkml_ops.lake.retry import retry
from sparkml_ops.lake.schemas import LAYOUT_PROPERTY, LAYOUT_VERSION, TABLES

MARKER_FILE = "_sparkml_ops.json"
PROBE_TABLE = "experiments"  # every layout has it; its property speaks for the root
EXTRA_TABLES = ("blob_chunks", "blob_files", "blob_marks")  # the artifact store's tables, when present
MIGRATE_HINT = "run 'sparkml-ops migrate --root {root}' to upgrade it in place"


def table_layout(location: RootLocation, table: str) -> int | None:
    """The layout version ``table`` carries: None when the table does not exist, 1 without the property."""
    try:
        dt = DeltaTable(location.table_uri(table), storage_options=location.storage_options or None)
    except TableNotFoundError:
        return None
    value = dt.metadata().configuration.get(LAYOUT_PROPERTY)
    if value is None:
        return 1
    try:
        return int(value)
    except ValueError as exc:
        raise StorageError(f"table {location.table_uri(table)} has layout property {LAYOUT_PROPERTY}={value!r}, "
                           "which is not a version number; the root is damaged") from exc


def check_layout(location: RootLocation, found: int | None = None) -> None:
    """Refuse a root whose layout this release does not read; the message names the fix.

    ``found`` is a version already read (the local marker's); otherwise the probe table's
    property is read. A root without tables passes (it is about to be created).
    """
    layout = table_layout(location, PROBE_TABLE) if found is None else found
    if layout is None or layout == LAYOUT_VERSION:
        return
    if layout < LAYOUT_VERSION:
        raise StorageError(f"root {location.uri} has layout version {layout}; this sparkml_ops reads version "
                           f"{LAYOUT_VERSION}: " + MIGRATE_HINT.format(root=location.tracking_uri()))
    raise StorageError(f"root {location.uri} has layout version {layout}, written by a newer sparkml_ops; this one "
                       f"reads version {LAYOUT_VERSION}: upgrade sparkml_ops to use it")


def read_marker(root: Path) -> dict[str, Any] | None:
    """The local root's marker (None when there is none); a damaged one is a StorageError."""
    marker = root / MARKER_FILE
    if not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"{marker} is unreadable or corrupt: {exc}") from exc
    if not isinstance(content, dict):
        raise StorageError(f"{marker} is unreadable or corrupt: not a JSON object")
    return content


def write_marker(root: Path, tables: list[str] | None = None) -> None:
    """Write the local marker atomically (a reader sees the old one or the new one)."""
    tmp = root / f".{MARKER_FILE}.{os.getpid()}.{threading.get_ident()}"
    tmp.write_text(json.dumps({"layout_version": LAYOUT_VERSION, "format": "sparkml_ops",
                               "tables": sorted(tables if tables is not None else TABLES)}))
    os.replace(tmp, root / MARKER_FILE)


@dataclass
class MigrationReport:
    root: str
    from_version: int | None
    to_version: int = LAYOUT_VERSION
    tables_upgraded: list[str] = field(default_factory=list)
    tables_current: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"root": self.root, "from_version": self.from_version, "to_version": self.to_version,
                "tables_upgraded": self.tables_upgraded, "tables_current": self.tables_current}


def migrate(location: RootLocation) -> MigrationReport:
    """Upgrade a root written by an older layout to :data:`LAYOUT_VERSION`, in place.

    Safe while other processes read the root: only table metadata changes, one atomic commit
    per table, and the local marker is replaced last. Never downgrades a newer root.
    """
    marker = read_marker(Path(location.uri)) if location.is_local else None
    if location.is_local and marker is None:
        raise StorageError(f"{location.uri} is not a sparkml_ops tracking root (no {MARKER_FILE}); nothing to migrate")
    versions = {name: table_layout(location, name) for name in (*TABLES, *EXTRA_TABLES)}
    present = {name: v for name, v in versions.items() if v is not None}
    if not present:
        raise StorageError(f"{location.uri} holds no sparkml_ops tables; nothing to migrate")
    recorded = marker.get("layout_version") if marker is not None else min(present.values())
    if not isinstance(recorded, int):
        raise StorageError(f"the marker of {location.uri} records layout {recorded!r}, not a version number")
    newest = max([recorded, *present.values()])
    if newest > LAYOUT_VERSION:
        raise StorageError(f"root {location.uri} has layout version {newest}, newer than this sparkml_ops "
                           f"({LAYOUT_VERSION}); upgrade sparkml_ops instead of migrating")
    report = MigrationReport(location.uri, recorded)
    for name, version in present.items():
        if version == LAYOUT_VERSION:
            report.tables_current.append(name)
            continue
        _set_layout_property(location, name)
        report.tables_upgraded.append(name)
    if marker is not None and (recorded != LAYOUT_VERSION or sorted(marker.get("tables", [])) != sorted(TABLES)):
        write_marker(Path(location.uri), [t for t in marker.get("tables", TABLES) if t in TABLES])
    return report


def _set_layout_property(location: RootLocation, name: str) -> None:
    uri = location.table_uri(name)

    def commit() -> None:  # a fresh handle per attempt: a concurrent append moved the table on
        dt = DeltaTable(uri, storage_options=location.storage_options or None)
        if dt.metadata().configuration.get(LAYOUT_PROPERTY) != str(LAYOUT_VERSION):
            dt.alter.set_table_properties({LAYOUT_PROPERTY: str(LAYOUT_VERSION)}, raise_if_not_exists=False)

    retry(commit, what=f"record layout {LAYOUT_VERSION} on table {uri}")
