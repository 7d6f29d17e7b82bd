"""MLflow artifact repository for ``delta-artifacts:`` URIs: artifacts as chunks in Delta tables.

A thin adapter: MLflow's repository contract (paths relative to the repository URI,
``FileInfo`` listings, download into a local directory) on top of
:class:`sparkml_ops.lake.blobs.BlobStore`. Every path is checked before anything is written;
a directory is one upload, so it appears atomically.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterable
from typing import BinaryIO

from mlflow.entities.file_info import FileInfo
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.utils.file_utils import create_tmp_dir

from sparkml_ops.errors import BadInput, NotFound
from sparkml_ops.lake.blobs import BlobStore, Source, check_path
from sparkml_ops.lake.blobs.paths import join
from sparkml_ops.tracking.artifact_uri import NAMESPACE, parse_artifact_uri
from sparkml_ops.tracking.compat import StreamUploadMixin, validate_path_within_directory
from sparkml_ops.tracking.mlflow_errors import mlflow_errors


@mlflow_errors
class DeltaArtifactRepository(ArtifactRepository, StreamUploadMixin):
    """Artifacts under one ``delta-artifacts:`` URI (a run's, a logged model's, ...)."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self.address = parse_artifact_uri(artifact_uri)
        self.store = BlobStore.open(self.address.location)

    # -- paths -------------------------------------------------------------------------

    def _relative(self, path: str | None, what: str) -> str:
        return check_path(path or "", what, allow_empty=True)

    def _full(self, relative: str) -> str:
        return join(self.address.prefix, relative)

    def _to_relative(self, full: str) -> str:
        prefix = self.address.prefix
        return full[len(prefix) + 1:] if prefix else full

    # -- writing -----------------------------------------------------------------------

    def log_artifact(self, local_file, artifact_path=None):
        directory = self._relative(artifact_path, "artifact_path")
        local_file = os.fspath(local_file)
        if not os.path.isfile(local_file):
            raise BadInput(f"local file {local_file!r} does not exist or is not a file "
                           "(log a directory with log_artifacts)")
        name = check_path(os.path.basename(local_file), "artifact file name")
        self.store.put(NAMESPACE, [Source(self._full(join(directory, name)), path=local_file)])

    def log_artifacts(self, local_dir, artifact_path=None):
        directory = self._relative(artifact_path, "artifact_path")
        files, dirs = collect_directory(os.fspath(local_dir))
        sources = [Source(self._full(join(directory, rel)), path=path) for rel, path in files]
        empty = [self._full(join(directory, rel)) for rel in dirs]
        if not files and not dirs and directory:
            empty = [self._full(directory)]
        if sources or empty:
            self.store.put(NAMESPACE, sources, empty)

    def log_artifact_from_stream(self, stream: BinaryIO, artifact_file_name: str, artifact_path: str | None = None):
        directory = self._relative(artifact_path, "artifact_path")
        name = check_path(os.path.basename(str(artifact_file_name)), "artifact file name")
        self.store.put(NAMESPACE, [Source(self._full(join(directory, name)), stream=stream)])

    async def log_artifact_from_async_stream(self, chunks: AsyncIterable[bytes], artifact_file_name: str,
                                             artifact_path: str | None = None):
        # Spool to a temporary file (bounded memory), then upload it as one stream.
        with tempfile.TemporaryFile() as spool:
            async for chunk in chunks:
                await asyncio.to_thread(spool.write, chunk)
            await asyncio.to_thread(spool.seek, 0)
            await asyncio.to_thread(self.log_artifact_from_stream, spool, artifact_file_name, artifact_path)

    def delete_artifacts(self, artifact_path=None):
        self.store.delete(NAMESPACE, self._full(self._relative(artifact_path, "artifact_path")))

    # -- reading -----------------------------------------------------------------------

    def list_artifacts(self, path=None):
        relative = self._relative(path, "path")
        return [FileInfo(join(relative, name), is_dir, None if is_dir else size)
                for name, is_dir, size in self.store.children(NAMESPACE, self._full(relative))]

    def _is_directory(self, artifact_path):
        full = self._full(self._relative(artifact_path, "artifact_path"))
        return any(e.path != full or e.is_dir for e in self.store.walk(NAMESPACE, full))

    def _download_file(self, remote_file_path, local_path):
        full = self._full(self._relative(remote_file_path, "artifact path"))
        self.store.read_to(NAMESPACE, full, os.fspath(local_path))

    def download_artifacts(self, artifact_path, dst_path=None):
        """Download a file or a directory; reads chunk files in storage order, verifying every byte."""
        relative = self._relative(artifact_path, "artifact_path")
        if dst_path:
            dst_path = os.path.abspath(dst_path)
            if not os.path.isdir(dst_path):
                what = "does not exist" if not os.path.exists(dst_path) else "is not a directory"
                error = NotFound if not os.path.exists(dst_path) else BadInput
                raise error(f"The destination path for downloaded artifacts {what}! Destination path: {dst_path}")
        else:
            dst_path = create_tmp_dir()
        full = self._full(relative)
        entries = self.store.walk(NAMESPACE, full)
        single = [e for e in entries if e.path == full and not e.is_dir]
        if relative and single:
            local = self._create_download_destination(relative, dst_path)
            self.store.download(NAMESPACE, [(single[0], local)])
            return local
        if not entries:
            if relative:
                raise NotFound(f"No such artifact: {relative!r} in {self.artifact_uri}")
            return dst_path
        items = []
        for entry in entries:
            local = os.path.join(dst_path, os.path.normpath(self._to_relative(entry.path)))
            validate_path_within_directory(dst_path, local)
            items.append((entry, local))
        self.store.download(NAMESPACE, items)
        if not relative:
            return dst_path
        target = os.path.join(dst_path, os.path.normpath(relative))
        os.makedirs(target, exist_ok=True)
        return target


def collect_directory(local_dir: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Files ``(relative path, real path)`` and empty directories of ``local_dir``.

    Symlinks are followed when they resolve inside ``local_dir``; one that points outside
    it, dangles or loops is rejected (:class:`BadInput`) before anything is uploaded.
    """
    if not os.path.isdir(local_dir):
        raise BadInput(f"local directory {local_dir!r} does not exist or is not a directory")
    top = os.path.realpath(local_dir)
    files: list[tuple[str, str]] = []
    empty: list[str] = []

    def inside(path: str) -> bool:
        return path == top or path.startswith(top.rstrip(os.sep) + os.sep)

    def walk(real_dir: str, relative: str, chain: tuple[str, ...]) -> None:
        with os.scandir(real_dir) as scan:
            children = sorted(scan, key=lambda e: e.name)
        if not children and relative:
            empty.append(relative)
        for child in children:
            rel = join(relative, check_path(child.name, f"name of {child.path!r}"))
            path = child.path
            if child.is_symlink():
                target = os.path.realpath(path)
                if not inside(target):
                    raise BadInput(f"symlink {path!r} points outside the logged directory {local_dir!r} "
                                   f"(to {target!r}); only links that stay inside it are followed")
                if target in chain:
                    raise BadInput(f"symlink {path!r} makes a loop (back to {target!r})")
                if os.path.isdir(target):
                    walk(target, rel, (*chain, target))
                elif os.path.isfile(target):
                    files.append((rel, target))
                else:
                    raise BadInput(f"symlink {path!r} points to {target!r}, which is not a file or directory")
            elif child.is_dir(follow_symlinks=False):
                walk(path, rel, (*chain, os.path.realpath(path)))
            elif child.is_file(follow_symlinks=False):
                files.append((rel, path))
            else:
                raise BadInput(f"{path!r} is not a regular file or directory (a FIFO, socket or device)")

    walk(top, "", (top,))
    return files, empty

