"""Turn whatever a user calls "the model" into one local MLmodel directory, fetched once.

Accepted: a local directory holding ``MLmodel``; a bare run id (the run's one logged model);
``runs:/<run_id>/<path>``; ``models:/<model_id>`` (an MLflow 3 logged model, immutable);
registry URIs ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/latest``
and ``models:/<name>/<stage>``, resolved through the model registry (the root's own, or the
registry URI MLflow is configured with) to one registered version; ``logged-model:/<name>/latest``
(the newest READY logged model called ``<name>``, for models that were never registered); any
other URI MLflow can download. Immutable downloads (logged models and registered versions) are
cached per process, so re-resolving an alias that has not moved costs one registry lookup.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkml_ops.errors import BadInput, NotFound

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_NEWEST_LOGGED = re.compile(r"^logged-model:/(?P<name>[^/@]+)/latest/?$")

_downloads: dict[str, str] = {}  # immutable source URI -> local directory
_digests: dict[str, str] = {}  # path of a cached immutable download -> its content hash
_metas: dict[str, Any] = {}  # path of a cached immutable download -> its parsed MLmodel
_registered_sources: set[str] = set()  # download URIs of registered versions (immutable)
_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedModel:
    """A model as a local directory plus the identity every output row carries."""

    uri: str  # as the user named it
    source_uri: str  # what was fetched (e.g. models:/m-...)
    path: str  # local directory with an MLmodel file
    run_id: str | None
    model_id: str | None
    digest: str  # content hash of the directory: the key of every per-worker cache
    meta: Any = field(default=None, compare=False, repr=False)  # mlflow.models.Model
    registered_name: str | None = None  # set when resolved through the model registry
    registered_version: int | None = None

    @property
    def label(self) -> str:
        """How messages name this model."""
        version = f"{self.registered_name} v{self.registered_version}" if self.registered_version else None
        ids = ", ".join(f"{k} {v}" for k, v in (("version", version), ("model", self.model_id),
                                                ("run", self.run_id)) if v)
        return f"{self.uri}" + (f" ({ids})" if ids else "")


def directory_digest(path: str | os.PathLike[str]) -> str:
    """sha256 over relative paths and contents of every file, in sorted order (16 hex chars)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _load_meta(path: Path):
    from mlflow.models import Model

    return Model.load(str(path / "MLmodel"))


def _run_model_uri(run_id: str) -> str:
    """The ``models:/`` URI of the one model a run logged, or its ``model`` artifact (MLflow 2 style)."""
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient().get_run(run_id)
    except Exception as exc:
        if not _is_missing(exc):
            raise  # a network, permission or storage failure is not "no such run"
        raise NotFound(f"model {run_id!r} looks like a run id, but no such run exists: {exc}") from exc
    ids = sorted({o.model_id for o in (run.outputs.model_outputs if run.outputs else [])})
    if len(ids) == 1:
        return f"models:/{ids[0]}"
    if len(ids) > 1:
        raise BadInput(f"run {run_id} logged {len(ids)} models {ids}: pass one as models:/<model_id>")
    return f"runs:/{run_id}/model"


def newest_logged_model_uri(name: str) -> str:
    """``models:/<model_id>`` of the newest READY logged model called ``name`` in any experiment.

    A model being logged exists (PENDING) before its files are uploaded; it is skipped until
    ``log_model`` finalizes it, so a reader never picks up half a model.
    """
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    if "'" in name or "\\" in name:
        raise BadInput(f"model name {name!r} must not contain quotes or backslashes")
    client = MlflowClient()
    experiment_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY,
                                                                         max_results=50_000)]
    if experiment_ids:
        found = client.search_logged_models(
            experiment_ids=experiment_ids, filter_string=f"name = '{name}' AND status = 'READY'",
            order_by=[{"field_name": "creation_timestamp", "ascending": False}], max_results=1)
        if found:
            return f"models:/{found[0].model_id}"
    raise NotFound(f"no finished logged model is named {name!r} (logged-model:/{name}/latest means the newest "
                   "READY logged model with that name; registered models are models:/<name>/<version|latest>)")


@dataclass(frozen=True)
class RegisteredVersion:
    """A registry URI pinned to one version: what to download and which version it is."""

    name: str
    version: int
    source_uri: str


def registered_version(uri: str) -> RegisteredVersion:
    """Resolve ``models:/<name>/<version|stage|latest>`` or ``models:/<name>@<alias>`` in the registry."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.utils.models import get_model_name_and_version
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        name, version = get_model_name_and_version(client, uri)
        mv = client.get_model_version(name, version)
        source = f"models:/{mv.model_id}" if mv.model_id else client.get_model_version_download_uri(name, version)
    except MlflowException as exc:
        raise NotFound(f"model {uri!r} is not in the model registry ({exc.message})") from exc
    with _lock:
        _registered_sources.add(source)
    return RegisteredVersion(name, int(version), source)


def _is_registry_uri(uri: str) -> bool:
    if not uri.startswith("models:/"):
        return False
    rest = uri[len("models:/"):].strip("/")
    return "/" in rest or "@" in rest or not _MODEL_ID.match(rest)


def _source_for(uri: str) -> str:
    """The URI to download for ``uri`` (after run-id and newest-logged resolution)."""
    if _RUN_ID.match(uri):
        return _run_model_uri(uri)
    newest = _NEWEST_LOGGED.match(uri)
    if newest:
        return newest_logged_model_uri(newest.group("name"))
    if uri.startswith("logged-model:"):
        raise BadInput(f"model URI {uri!r} must be logged-model:/<name>/latest")
    if "://" not in uri and ":/" not in uri:
        raise BadInput(f"model {uri!r} is neither a directory with an MLmodel file, a run id, "
                       "runs:/<run_id>/<path>, models:/<model_id>, models:/<name>/<version>, models:/<name>@<alias>, "
                       "models:/<name>/latest nor logged-model:/<name>/latest")
    return uri


def _is_missing(exc: BaseException) -> bool:
    """True when ``exc`` says the thing does not exist (MLflow's RESOURCE_DOES_NOT_EXIST, a missing file)."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, (NotFound, FileNotFoundError)):
        return True
    return isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def _immutable(source_uri: str) -> bool:
    if source_uri in _registered_sources:
        return True
    return source_uri.startswith("models:/") and bool(_MODEL_ID.match(source_uri[len("models:/"):].strip("/")))


def _download(source_uri: str, uri: str) -> str:
    import mlflow

    with _lock:
        cached = _downloads.get(source_uri)
    if cached and (Path(cached) / "MLmodel").is_file():
        return cached
    target = tempfile.mkdtemp(prefix="sparkml-ops-model-")
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=source_uri, dst_path=target)
    except Exception as exc:
        if not _is_missing(exc):
            raise
        raise NotFound(f"cannot fetch model {uri!r} (as {source_uri}): {exc}") from exc
    if not (Path(path) / "MLmodel").is_file():
        raise BadInput(f"model {uri!r} resolved to {source_uri}, which has no MLmodel file")
    if _immutable(source_uri):
        with _lock:
            _downloads[source_uri] = path
    return path


def resolve_model(model: str | os.PathLike[str]) -> ResolvedModel:
    """Resolve and (if remote) download ``model`` once, on the driver: what every scoring path loads.

    Args:
        model: a local MLmodel directory, a run id, ``runs:/<run_id>/<path>``, ``models:/<model_id>``,
            a registry URI (``models:/<name>/<version>``, ``@<alias>``, ``/latest``, ``/<stage>``),
            ``logged-model:/<name>/latest`` or any URI MLflow can download (see the module docstring).

    Returns a :class:`ResolvedModel`: the local directory and the identity (run, version,
    digest) every scored row carries.

    Raises:
        BadInput: an empty or malformed URI, or a path without an MLmodel file.
        NotFound: no such run, logged model, registered model, version or alias.

    Example: ``resolve_model("models:/churn@prod").path``.
    """
    if isinstance(model, ResolvedModel):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise BadInput(f"model must be a URI, run id or path, got {type(model).__name__} {model!r}")
    uri = os.fspath(model).strip()
    if not uri:
        raise BadInput("model URI is empty: pass runs:/..., models:/..., a run id or a path")
    local = Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()
    pinned: RegisteredVersion | None = None
    if uri.startswith("file://") or ("://" not in uri and ":/" not in uri and local.exists()):
        if not (local / "MLmodel").is_file():
            raise BadInput(f"model path {str(local)!r} is not a directory with an MLmodel file")
        source, path = str(local.resolve()), str(local.resolve())
    elif _is_registry_uri(uri):
        pinned = registered_version(uri)
        source, path = pinned.source_uri, _download(pinned.source_uri, uri)
    else:
        source = _source_for(uri)
        path = _download(source, uri)
    meta = _meta_of(source, path)
    model_id = getattr(meta, "model_id", None)
    if not model_id and source.startswith("models:/"):
        model_id = source[len("models:/"):].strip("/").split("/")[0]
    return ResolvedModel(uri=uri, source_uri=source, path=path, run_id=meta.run_id, model_id=model_id,
                         digest=_digest(source, path), meta=meta,
                         registered_name=pinned.name if pinned else None,
                         registered_version=pinned.version if pinned else None)


def _meta_of(source_uri: str, path: str) -> Any:
    """The parsed MLmodel, parsed once per immutable download (warm alias resolution stays cheap)."""
    if not _immutable(source_uri):
        return _load_meta(Path(path))
    with _lock:
        known = _metas.get(path)
    if known is None:
        known = _load_meta(Path(path))
        with _lock:
            _metas[path] = known
    return known


def _digest(source_uri: str, path: str) -> str:
    """The model directory's content hash; a cached immutable download is hashed once, not on
    every resolution (a stream re-resolving its model every few batches)."""
    if not _immutable(source_uri):
        return directory_digest(path)  # a local directory may change between calls
    with _lock:
        known = _digests.get(path)
    if known is None:
        known = directory_digest(path)
        with _lock:
            _digests[path] = known
    return known
