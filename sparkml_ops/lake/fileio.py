"""Raw file access inside one table's directory, local or on an object store (blob chunks, snapshots).

Chunk files are written and read by us, not by delta-rs (whose writer buffers whole files of
large binary values in memory): local roots use plain files, object-store roots go through
delta-rs's own object store (``DeltaStorageHandler``) with the root's storage options.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from sparkml_ops.lake.location import RootLocation


class TableFiles:
    """Files of one table, addressed by their path relative to the table directory."""

    def __init__(self, location: RootLocation, table: str, *, force_object_store: bool = False) -> None:
        self.table_uri = location.table_uri(table)
        self.local = location.is_local and not force_object_store
        self._fs: pafs.FileSystem | None = None
        if not self.local:
            from deltalake.fs import DeltaStorageHandler

            self._fs = pafs.PyFileSystem(DeltaStorageHandler(self.table_uri, location.storage_options or None))

    def describe(self, path: str) -> str:
        return f"{self.table_uri.rstrip('/')}/{path}"

    def open_output(self, path: str) -> Any:
        if self.local:  # a native sink: Parquet pages go to the file without the GIL
            return pa.OSFile(os.path.join(self.table_uri, path), "wb")
        assert self._fs is not None
        return self._fs.open_output_stream(path)

    def open_input(self, path: str) -> Any:
        """A random-access file for Parquet readers; ``FileNotFoundError`` when it is gone."""
        if self.local:
            return pa.OSFile(os.path.join(self.table_uri, path), "rb")
        assert self._fs is not None
        info = self._fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(self.describe(path))
        return self._fs.open_input_file(path)

    def size(self, path: str) -> int:
        if self.local:
            return os.path.getsize(os.path.join(self.table_uri, path))
        assert self._fs is not None
        return int(self._fs.get_file_info(path).size)

    def delete(self, path: str) -> None:
        """Delete one file; a file already gone is fine."""
        try:
            if self.local:
                os.remove(os.path.join(self.table_uri, path))
            else:
                assert self._fs is not None
                self._fs.delete_file(path)
        except FileNotFoundError:
            pass
