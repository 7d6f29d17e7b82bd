"""Where a tracking root lives: a local directory or an object-store URI, and its tables.

``delta:/abs/path``, ``delta:rel/path``, ``delta:///abs/path`` and ``delta://s3://bucket/x``
(any URI delta-rs understands) all name a root. Object-store roots take credentials from
``storage_options`` (delta-rs keys such as ``AWS_REGION``) or the ``AWS_*`` environment
variables delta-rs reads, never from the URI.

Concurrent commits to an S3 root are safe only when putting a commit file fails if it exists.
S3 (since 2024) and S3-compatible servers offer that as a conditional write
(``If-None-Match: *``): :func:`s3_commit_options` asks delta-rs for it explicitly, so safety
does not rest on a library default, and never turns a user's ``AWS_S3_ALLOW_UNSAFE_RENAME``
into silent data loss.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from sparkml_ops import config
from sparkml_ops.errors import BadInput

_log = logging.getLogger(__name__)

SCHEME = "delta"
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "adl", "file", "memory")
S3_SCHEMES = ("s3", "s3a")
# delta-rs / object_store keys that choose how an S3 commit avoids overwriting another writer's
_S3_COMMIT_KEYS = ("conditional_put", "aws_conditional_put", "copy_if_not_exists", "aws_copy_if_not_exists",
                   "aws_s3_locking_provider")
_TRUE = {"1", "true", "yes", "on"}
_ENDPOINT_KEYS = {"aws_endpoint_url", "aws_endpoint", "endpoint_url", "endpoint"}


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
        """Write-ahead logs stay on local disk; for remote roots, under the ``wal_dir`` setting.

        A remote root's logs are per machine: a killed writer's log is replayed by the next
        process on the same machine (and user) that opens the root, or by ``sparkml-ops recover``.
        A custom endpoint is part of the root's identity: ``s3://b/x`` on a MinIO server and on
        AWS are different roots, and one's log must never be replayed into the other.
        """
        if self.is_local:
            return Path(self.uri) / "_wal"
        endpoint = self.endpoint()
        identity = self.uri if not endpoint else f"{self.uri}\n{endpoint.rstrip('/')}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return Path(str(config.resolve("wal_dir"))).expanduser() / digest

    def endpoint(self) -> str:
        """The custom object-store endpoint (storage option or ``AWS_ENDPOINT_URL``), or ``""``."""
        for key, value in self.storage_options.items():
            if key.lower() in _ENDPOINT_KEYS and value:
                return str(value)
        return os.environ.get("AWS_ENDPOINT_URL", "") if self.uri.split("://")[0] in S3_SCHEMES else ""

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
        options = s3_commit_options(storage_options or {}) if scheme in S3_SCHEMES else storage_options or {}
        return RootLocation(text.rstrip("/"), options)
    return RootLocation(str(Path(text).expanduser().resolve()), storage_options or {})


def s3_commit_options(options: dict[str, str]) -> dict[str, str]:
    """``options`` plus ``conditional_put: etag`` unless the user chose a commit mechanism.

    With it, delta-rs writes each commit file with ``If-None-Match: *``: of two writers racing
    for one version, exactly one wins and the other retries. A user who turns it off and sets
    ``AWS_S3_ALLOW_UNSAFE_RENAME`` gets a warning: concurrent writers can then lose commits.
    """
    given = {k.lower(): str(v) for k, v in options.items()}

    def value(key: str) -> str:
        return given.get(key, os.environ.get(key.upper(), "")).lower()

    if not any(value(k) for k in _S3_COMMIT_KEYS):
        return {**options, "conditional_put": "etag"}
    safe = "etag" in (value("conditional_put"), value("aws_conditional_put")) or bool(
        value("aws_s3_locking_provider") or value("copy_if_not_exists") or value("aws_copy_if_not_exists"))
    if value("aws_s3_allow_unsafe_rename") in _TRUE and not safe:
        _log.warning("S3 root with AWS_S3_ALLOW_UNSAFE_RENAME and conditional writes turned off: two processes "
                     "committing at once can overwrite each other's commit and lose data; remove the "
                     "conditional_put option to use S3 conditional writes")
    return dict(options)
