"""Where a tracking root lives: a local directory or an object-store URI, and its tables.

``delta:/abs/path``, ``delta:rel/path``, ``delta:///abs/path`` and ``delta://s3://bucket/x``
(any URI delta-rs understands) all name a root. Object-store roots take credentials from
``storage_options`` (delta-rs keys such as ``AWS_REGION``), never from the URI.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from sparkml_ops.errors import BadInput

SCHEME = "delta"
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "adl", "file", "memory")


@dataclass(frozen=True)
class RootLocation:
    """A resolved root: ``uri`` is an absolute path for local roots, a URI otherwise."""

    uri: str
    storage_options: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    def table_uri(self, table: str) -> str:
        return self._join("tables", table)

    def may_have_commit_after(self, table_uri: str, version: int) -> bool:
        """False only when no commit can have followed ``version`` of the table at ``table_uri``.

        Listing a Delta log costs time proportional to its length; on a local root, the next
        commit's JSON file not existing proves there is none (every commit creates it).
        Object stores always answer True.
        """
        if not self.is_local:
            return True
        return os.path.exists(os.path.join(table_uri, "_delta_log", f"{version + 1:020d}.json"))

    def wal_dir(self) -> Path:
        """Write-ahead logs stay on local disk; for remote roots, under the user's cache."""
        if self.is_local:
            return Path(self.uri) / "_wal"
        digest = hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        return Path("~/.cache/sparkml_ops/wal").expanduser() / digest

    def tracking_uri(self) -> str:
        return f"{SCHEME}:{self.uri}" if self.is_local else f"{SCHEME}://{self.uri}"

    def _join(self, *parts: str) -> str:
        if self.is_local:
            return os.path.join(self.uri, *parts)
        return "/".join([self.uri.rstrip("/"), *parts])


def parse_root(uri: str | os.PathLike[str], storage_options: dict[str, str] | None = None) -> RootLocation:
    """Turn a tracking URI or a plain path into a :class:`RootLocation`."""
    text = os.fspath(uri).strip()
    if not text:
        raise BadInput("tracking root is empty; give a path or a 'delta:' URI")
    if "\x00" in text:
        raise BadInput(f"tracking root {text!r} contains a NUL character")
    if text.startswith(f"{SCHEME}:"):
        text = text[len(SCHEME) + 1 :]
        if text.startswith("//") and "://" in text[2:]:
            text = text[2:]  # delta://s3://bucket/path
        elif text.startswith("///"):
            text = text[2:]  # delta:///abs/path
        elif text.startswith("//"):
            raise BadInput(
                f"tracking URI {uri!r} has a host part; use 'delta:/abs/path', "
                "'delta:relative/path' or 'delta://s3://bucket/path'"
            )
    if not text:
        raise BadInput(f"tracking URI {uri!r} names no path")
    if "://" in text:
        scheme = urlparse(text).scheme
        if scheme == "file":
            return RootLocation(str(Path(urlparse(text).path).resolve()), storage_options or {})
        if scheme not in OBJECT_STORE_SCHEMES:
            raise BadInput(
                f"tracking root {text!r} has unsupported scheme {scheme!r}; "
                f"supported: local paths and {', '.join(OBJECT_STORE_SCHEMES)}"
            )
        return RootLocation(text.rstrip("/"), storage_options or {})
    return RootLocation(str(Path(text).expanduser().resolve()), storage_options or {})
