"""Content-addressed chunked blob storage on Delta tables (knows nothing of MLflow).

``BlobStore.open(location)`` stores files as sha256-keyed chunks in ``blob_chunks`` and
publishes each upload with one commit to the ``blob_files`` manifest; :func:`gc` reclaims
chunks nobody references, safely under concurrent uploads.
"""

from sparkml_ops.lake.blobs.gc import DEFAULT_WAIT_S, MIN_WAIT_S, GcReport, gc
from sparkml_ops.lake.blobs.paths import check_path
from sparkml_ops.lake.blobs.store import CHUNK_SIZE, BlobStore, Entry, PutResult, Source
from sparkml_ops.lake.blobs.tables import BLOB_TABLES

__all__ = ["BLOB_TABLES", "CHUNK_SIZE", "DEFAULT_WAIT_S", "MIN_WAIT_S", "BlobStore", "Entry", "GcReport",
           "PutResult", "Source", "check_path", "gc"]
