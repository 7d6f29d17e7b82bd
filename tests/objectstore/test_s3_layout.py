"""Layout versions on an ``s3://`` root, which has no marker file: the tables' property decides.

A layout-1 root (built with plain delta-rs, then copied object by object to S3, as a user's
``aws s3 sync`` would) is refused with the command that upgrades it; ``sparkml-ops migrate``
upgrades it in place on S3, and MLflow then reads its run.
"""

from __future__ import annotations

import json

import pytest

from sparkml_ops.errors import StorageError
from sparkml_ops.lake import Lake, parse_root
from sparkml_ops.lake.layout import table_layout
from sparkml_ops.lake.schemas import LAYOUT_VERSION
from tests.cli_run import run_cli
from tests.lake import layout1
from tests.objectstore.conftest import BUCKET, new_root


def test_layout_1_root_on_s3_is_refused_then_migrated(s3_endpoint, s3_settings, tmp_path, capsys):
    import boto3

    local = layout1.build(tmp_path / "old")
    root = new_root()
    prefix = root.removeprefix(f"s3://{BUCKET}/")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    for path in sorted(p for p in local.rglob("*") if p.is_file() and p.name != "_sparkml_ops.json"):
        s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(local).as_posix()}")

    location = parse_root(root, json.loads(s3_settings["SPARKML_OPS_STORAGE_OPTIONS"]))
    assert table_layout(location, "runs") == 1
    with pytest.raises(StorageError, match=r"sparkml-ops migrate"):
        Lake(location)
    assert table_layout(location, "registry") is None  # the refused open created nothing

    assert run_cli("migrate", "--root", f"delta://{root}") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from_version"] == 1 and sorted(report["tables_upgraded"]) == sorted(layout1.LAYOUT1_TABLES)
    assert all(table_layout(location, t) == LAYOUT_VERSION for t in layout1.LAYOUT1_TABLES)

    from mlflow import MlflowClient

    client = MlflowClient(f"delta://{root}")
    try:
        run = client.get_run(layout1.RUN_ID)
        assert run.data.params == {"alpha": "0.5"} and run.info.run_name == "layout-one"
        assert [m.step for m in client.get_metric_history(layout1.RUN_ID, "loss")] == list(range(5))
    finally:
        Lake.open(location).close()
