"""The registry's current state, folded from the append-only ``registry`` table.

Rows are applied in log order (``seq`` is the commit's Delta version), incrementally: a
refresh reads only files added since the last one. Lookups on the write path (a name, a
model's highest version) are dictionary hits; searches use Arrow tables built from the
state once per version and cached.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sparkml_ops.lake.serial import SerialTable

MODEL, MODEL_TAG, VERSION, VERSION_TAG, ALIAS = "model", "model_tag", "version", "version_tag", "alias"


@dataclass
class Snapshot:
    """Plain dictionaries of the live registry at one Delta version."""

    version: int = -1
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # model_key -> row (live only)
    by_name: dict[str, str] = field(default_factory=dict)  # name -> model_key
    model_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    versions: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # incl. deleted
    version_tags: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)

    def apply(self, row: dict[str, Any]) -> None:
        kind, key = row["kind"], row["model_key"]
        if kind == MODEL:
            old = self.models.pop(key, None)
            if old is not None and self.by_name.get(old["name"]) == key:
                del self.by_name[old["name"]]
            if row["deleted"]:
                for table in (self.model_tags, self.versions, self.aliases):
                    table.pop(key, None)
                self.version_tags = {k: v for k, v in self.version_tags.items() if k[0] != key}
            else:
                self.models[key] = row
                self.by_name[row["name"]] = key
        elif kind == VERSION:
            self.versions.setdefault(key, {})[row["version"]] = row
        elif kind == MODEL_TAG:
            _set_or_drop(self.model_tags.setdefault(key, {}), row["key"], row)
        elif kind == VERSION_TAG:
            _set_or_drop(self.version_tags.setdefault((key, row["version"]), {}), row["key"], row)
        elif kind == ALIAS:
            aliases = self.aliases.setdefault(key, {})
            if row["deleted"]:
                aliases.pop(row["key"], None)
            else:
                aliases[row["key"]] = row["target_version"]


def _set_or_drop(tags: dict[str, str], key: str, row: dict[str, Any]) -> None:
    if row["deleted"]:
        tags.pop(key, None)
    else:
        tags[key] = row["value"]


class RegistryState:
    """One per store: the snapshot plus derived Arrow tables, refreshed from the table."""

    def __init__(self, table: SerialTable) -> None:
        self.table = table
        self.snapshot = Snapshot()
        self._seen: set[str] = set()
        self._lock = threading.RLock()
        self._derived: dict[str, tuple[int, Any]] = {}

    def sync(self, *, refresh: bool = True) -> int:
        """Catch up with the table; returns the Delta version the snapshot now reflects."""
        with self._lock:
            version, fresh, rebuilt = self.table.new_rows(self._seen, refresh=refresh)
            if rebuilt:
                self.snapshot = Snapshot()
            parts = [t for t in fresh if t.num_rows]
            if parts:
                rows = pa.concat_tables(parts)
                rows = rows.take(pc.sort_indices(rows, sort_keys=[("seq", "ascending")]))
                for row in rows.to_pylist():
                    self.snapshot.apply(row)
            self.snapshot.version = version
            return version

    @contextmanager
    def current(self, *, sync: bool) -> Iterator[Snapshot]:
        """The snapshot, held still (no sync from another thread) while the caller reads it;
        ``sync`` first catches up with the table."""
        with self._lock:
            if sync:
                self.sync()
            yield self.snapshot

    def derive(self, name: str, build: Any) -> Any:
        """``build(snapshot)`` cached until the registry changes."""
        with self._lock:
            hit = self._derived.get(name)
            if hit is not None and hit[0] == self.snapshot.version:
                return hit[1]
            value = build(self.snapshot)
            self._derived[name] = (self.snapshot.version, value)
            return value
