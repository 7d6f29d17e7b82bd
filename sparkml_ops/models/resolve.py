"""Turn whatever a user calls "the model" into one local MLmodel directory, fetched once.

Accepted: a local directory holding ``MLmodel``; a bare run id (the run's one logged model);
``runs:/<run_id>/<path>``; ``models:/<model_id>`` (an MLflow 3 logged model, immutable);
``models:/<name>/latest`` (this store has no model registry, so it means the newest logged
model called ``<name>``: the URI a stream re-resolves to pick up new models); any other URI
MLflow can download. Immutable downloads are cached per process, so re-resolving an
unchanged ``models:/<name>/latest`` costs one search, not a download.
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

from sparkml_ops.errors import BadInput, NotFound, NotSupported

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_LATEST = re.compile(r"^models:/(?P<name>[^/@]+)(?:/latest|@latest)/?$")

_downloads: dict[str, str] = {}  # immutable source URI -> local directory
_digests: dict[str, str] = {}  # path of a cached immutable download -> its content hash
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

    @property
    def label(self) -> str:
        """How messages name this model."""
        ids = ", ".join(f"{k} {v}" for k, v in (("model", self.model_id), ("run", self.run_id)) if v)
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
        raise NotFound(f"model {run_id!r} looks like a run id, but no such run exists: {exc}") from exc
    ids = sorted({o.model_id for o in (run.outputs.model_outputs if run.outputs else [])})
    if len(ids) == 1:
        return f"models:/{ids[0]}"
    if len(ids) > 1:
        raise BadInput(f"run {run_id} logged {len(ids)} models {ids}: pass one as models:/<model_id>")
    return f"runs:/{run_id}/model"


def latest_model_uri(name: str) -> str:
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
    raise NotFound(f"no finished logged model is named {name!r} (models:/{name}/latest means the newest "
                   "READY logged model with that name; this store has no model registry)")


def _source_for(uri: str) -> str:
    """The URI to download for ``uri`` (after run-id and ``latest`` resolution)."""
    if _RUN_ID.match(uri):
        return _run_model_uri(uri)
    latest = _LATEST.match(uri)
    if latest and not _MODEL_ID.match(latest.group("name")):
        return latest_model_uri(latest.group("name"))
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):].strip("/")
        if not _MODEL_ID.match(rest.split("/")[0]):
            raise NotSupported(
                f"model URI {uri!r} names a registered model, and this store has no model registry: "
                "use models:/<model_id> (e.g. models:/m-0123...) or models:/<name>/latest "
                "(the newest logged model called <name>)")
    if "://" not in uri and ":/" not in uri:
        raise BadInput(f"model {uri!r} is neither a directory with an MLmodel file, a run id, "
                       "runs:/<run_id>/<path>, models:/<model_id> nor models:/<name>/latest")
    return uri


def _immutable(source_uri: str) -> bool:
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
        raise NotFound(f"cannot fetch model {uri!r} (as {source_uri}): {exc}") from exc
    if not (Path(path) / "MLmodel").is_file():
        raise BadInput(f"model {uri!r} resolved to {source_uri}, which has no MLmodel file")
    if _immutable(source_uri):
        with _lock:
            _downloads[source_uri] = path
    return path


def resolve_model(model: str | os.PathLike[str]) -> ResolvedModel:
    """Resolve and (if remote) download ``model`` on the driver; see the module docstring."""
    if isinstance(model, ResolvedModel):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise BadInput(f"model must be a URI, run id or path, got {type(model).__name__} {model!r}")
    uri = os.fspath(model).strip()
    if not uri:
        raise BadInput("model URI is empty: pass runs:/..., models:/..., a run id or a path")
    local = Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()
    if uri.startswith("file://") or ("://" not in uri and ":/" not in uri and local.exists()):
        if not (local / "MLmodel").is_file():
            raise BadInput(f"model path {str(local)!r} is not a directory with an MLmodel file")
        source, path = str(local.resolve()), str(local.resolve())
    else:
        source = _source_for(uri)
        path = _download(source, uri)
    meta = _load_meta(Path(path))
    model_id = getattr(meta, "model_id", None)
    if not model_id and source.startswith("models:/"):
        model_id = source[len("models:/"):].strip("/").split("/")[0]
    return ResolvedModel(uri=uri, source_uri=source, path=path, run_id=meta.run_id, model_id=model_id,
                         digest=_digest(source, path), meta=meta)


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
