"""The ``delta-artifacts:`` URI: where in which root an artifact lives.

Shape: the root's URI, then the virtual directory ``artifacts``, then the artifact path::

    delta-artifacts:/abs/root/artifacts/<experiment_id>/<run_id>/artifacts/model/MLmodel
    delta-artifacts://s3://bucket/root/artifacts/<experiment_id>/models/<model_id>/artifacts

Everything is in the URI *path*, so MLflow's own URI handling (``append_to_uri_path``,
``runs:/`` and ``models:/`` resolution, ``dirname`` splitting) and plain string joins
(``artifact_uri + "/file.txt"``) keep working. The root is the shortest prefix before an
``artifacts`` segment that holds a sparkml_ops root; the answer is cached per process.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

from sparkml_ops import config
from sparkml_ops.errors import BadInput
from sparkml_ops.lake.blobs import check_path
from sparkml_ops.lake.lake import MARKER_FILE
from sparkml_ops.lake.location import RootLocation, parse_root

SCHEME = "delta-artifacts"
NAMESPACE = "artifacts"  # the blob namespace, and the virtual directory under the root

_SCHEME_NAME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_roots: dict[str, str] = {}
_roots_lock = threading.Lock()


@dataclass(frozen=True)
class ArtifactAddress:
    """A parsed URI: the root and the blob path prefix inside :data:`NAMESPACE` ('' = all)."""

    location: RootLocation
    prefix: str

    def uri(self, path: str = "") -> str:
        return artifact_uri(self.location, "/".join(p for p in (self.prefix, path) if p))


def artifact_uri(location: RootLocation, path: str = "") -> str:
    """The URI of ``path`` (a blob path in the artifact namespace) under ``location``."""
    base = f"{SCHEME}:{location.uri}" if location.is_local else f"{SCHEME}://{location.uri}"
    return "/".join(p for p in (base.rstrip("/"), NAMESPACE, path) if p)


def default_artifact_root(location: RootLocation) -> str:
    """What new experiments get as ``<artifact root>/<experiment_id>``."""
    return artifact_uri(location)


def is_artifact_uri(uri: str) -> bool:
    return isinstance(uri, str) and uri.startswith(f"{SCHEME}:")


def parse_artifact_uri(uri: str, storage_options: dict[str, str] | None = None) -> ArtifactAddress:
    """Split a ``delta-artifacts:`` URI into root and prefix; :class:`BadInput` when it names none."""
    candidates = root_candidates(uri)
    options = storage_options if storage_options is not None else config.resolve("storage_options")
    root, prefix = _choose_root(uri, candidates, options)
    prefix = check_path(prefix, f"artifact path in URI {uri!r}", allow_empty=True)
    return ArtifactAddress(parse_root(root, options), prefix)


def root_candidates(uri: str) -> list[tuple[str, str]]:
    """Every ``(root, prefix)`` split of ``uri`` at an ``artifacts`` segment, shortest root first."""
    if not is_artifact_uri(uri):
        raise BadInput(f"{uri!r} is not a '{SCHEME}:' URI")
    if "\x00" in uri:
        raise BadInput(f"artifact URI {uri!r} contains a NUL character")
    rest = uri[len(SCHEME) + 1:]
    if rest.startswith("//") and "://" in rest[2:]:
        rest = rest[2:]  # delta-artifacts://s3://bucket/path
    elif rest.startswith("///"):
        rest = rest[2:]  # delta-artifacts:///abs/path
    elif rest.startswith("//"):
        raise BadInput(f"artifact URI {uri!r} has a host part; use '{SCHEME}:/abs/root/{NAMESPACE}/...' or "
                       f"'{SCHEME}://s3://bucket/root/{NAMESPACE}/...'")
    scheme, sep, path = rest.partition("://")
    if sep and not _SCHEME_NAME.fullmatch(scheme):
        scheme, sep, path = "", "", rest
    head = f"{scheme}://" if sep else "/"
    if not sep:
        if not rest.startswith("/"):
            raise BadInput(f"artifact URI {uri!r} must name an absolute root path")
        path = rest
    names = path.strip("/").split("/")
    # The root is everything before some "artifacts" segment (at least one name: a directory or bucket).
    candidates = [(head + "/".join(names[:i]), "/".join(names[i + 1:]))
                  for i, name in enumerate(names) if name == NAMESPACE and i >= 1]
    if not candidates:
        raise BadInput(f"artifact URI {uri!r} has no '/{NAMESPACE}/' segment after its root; expected "
                       f"'{SCHEME}:<root>/{NAMESPACE}/<path>'")
    return candidates


def _choose_root(uri: str, candidates: list[tuple[str, str]], options: dict[str, str]) -> tuple[str, str]:
    for root, prefix in candidates:
        with _roots_lock:
            known = _roots.get(root)
        if known is None:
            known = "yes" if _is_root(root, options) else "no"
            if known == "yes":
                with _roots_lock:
                    _roots[root] = known
        if known == "yes":
            return root, prefix
    tried = ", ".join(repr(r) for r, _ in candidates)
    raise BadInput(f"artifact URI {uri!r} names no sparkml_ops root: none of {tried} is one "
                   f"(open the tracking URI 'delta:<root>' once to create it)")


def _is_root(root: str, options: dict[str, str]) -> bool:
    if "://" not in root:
        return os.path.isfile(os.path.join(root, MARKER_FILE)) or os.path.isdir(
            os.path.join(root, "tables", "blob_files", "_delta_log"))
    from sparkml_ops.lake.delta import is_table

    location = parse_root(root, options)
    return any(is_table(location.table_uri(t), location.storage_options) for t in ("blob_files", "experiments"))
