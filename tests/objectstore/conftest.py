"""A real S3 API (moto's server) on 127.0.0.1 for the S3 tests, and fresh ``s3://`` roots.

The store reaches it the way a user's does: ``SPARKML_OPS_STORAGE_OPTIONS`` (JSON) names the
endpoint and fake credentials; spawned worker processes inherit it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import tracking_to

BUCKET = "sparkml-ops-test"
SERVER = Path(__file__).with_name("s3server.py")


@pytest.fixture(scope="package")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a running moto S3 server with bucket :data:`BUCKET`."""
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("port "), f"moto server did not start: {line!r}"
        endpoint = f"http://127.0.0.1:{int(line.split()[1])}"
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def server_stats(endpoint: str) -> dict[str, int]:
    """Conditional PUTs the server has served, and how many failed their precondition."""
    import urllib.request

    with urllib.request.urlopen(f"{endpoint}/_s3server/stats", timeout=10) as response:
        return json.loads(response.read())


def storage_options(endpoint: str) -> dict[str, str]:
    """What a user of an S3-compatible server on plain HTTP sets (path-style is delta-rs's default)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="package")
def s3_settings(s3_endpoint: str, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The environment of this process (and of those it spawns) while the S3 tests run; restored after
    them (package scope), so no later test sees these settings."""
    env = {"SPARKML_OPS_STORAGE_OPTIONS": json.dumps(storage_options(s3_endpoint)),
           "SPARKML_OPS_WAL_DIR": str(tmp_path_factory.mktemp("s3-wal"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def new_root() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_root(s3_settings) -> Iterator[str]:
    """A fresh ``delta://s3://…`` tracking URI (mlflow pointed at it), closed afterwards."""
    with tracking_to(f"delta://{new_root()}") as uri:
        yield uri
