"""The artifact blob store's core cases and its garbage collection, on an ``s3://`` root.

Chunk files are written and read through delta-rs's object store with the root's storage
options (:mod:`sparkml_ops.lake.fileio`); gc deletes them there. The tests are the local
suite's own; ``location`` (which ``blobs`` builds on) names a fresh S3 prefix here.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.artifacts.conftest import blobs, src  # noqa: F401  (the local suite's fixtures)
from tests.artifacts.test_blobs import (  # noqa: F401  (collected here, on S3)
    test_overwrite_and_delete,
    test_round_trip_of_text_binary_empty_multi_chunk_and_nested,
    test_same_content_is_stored_once,
    test_stream_sources,
)
from tests.artifacts.test_gc import test_gc_reclaims_deleted_and_keeps_referenced  # noqa: F401
from tests.objectstore.conftest import new_root


@pytest.fixture
def location(s3_settings):
    from sparkml_ops.lake import parse_root

    return parse_root(new_root(), json.loads(os.environ["SPARKML_OPS_STORAGE_OPTIONS"]))
