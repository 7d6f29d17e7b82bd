"""Build a small layout-1 root exactly as releases before issue 11 wrote it, with plain delta-rs.

Layout 1 (``git log -p -- sparkml_ops/lake/schemas.py``, commits 2480604..03e2202): the same
tables and columns as today, each table's description ``"sparkml_ops layout 1: <doc>"``,
configuration without any layout property, and a ``_sparkml_ops.json`` marker
``{"layout_version": 1, "format": "sparkml_ops", "tables": [...]}`` at the root. It is built
here with deltalake alone (not with sparkml_ops' writer), deterministically: fixed ids,
times and values, so every test gets the same root.

    python -m tests.lake.layout1 /tmp/layout1-root     # to look at one
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from sparkml_ops.lake.schemas import TABLES

RUN_ID = "a1" * 16
EXPERIMENT_ID = "0"
T0 = 1_700_000_000_000
LAYOUT1_CONFIGURATION = {"delta.checkpointInterval": "50", "delta.appendOnly": "false",
                         "delta.logRetentionDuration": "interval 30 days"}

ROWS: dict[str, list[dict]] = {
    "experiments": [{"experiment_id": EXPERIMENT_ID, "name": "Default", "artifact_location": "delta-artifacts:/0",
                     "lifecycle_stage": "active", "creation_time": T0, "last_update_time": T0, "seq": 1}],
    "runs": [{"run_id": RUN_ID, "experiment_id": EXPERIMENT_ID, "run_name": "layout-one", "user_id": "tester",
              "status": "FINISHED", "start_time": T0, "end_time": T0 + 5_000, "lifecycle_stage": "active",
              "artifact_uri": f"delta-artifacts:/0/{RUN_ID}/artifacts", "deleted_time": None, "seq": 2}],
    "params": [{"run_id": RUN_ID, "key": "alpha", "value": "0.5", "seq": 3}],
    "metrics": [{"run_id": RUN_ID, "key": "loss", "value": 1.0 / (step + 1), "timestamp": T0 + step, "step": step,
                 "model_id": None, "dataset_name": None, "dataset_digest": None, "seq": 4 + step}
                for step in range(5)],
    "tags": [{"run_id": RUN_ID, "key": "mlflow.runName", "value": "layout-one", "deleted": False, "seq": 10}],
}


# The first layout-1 release (2480604) had these eleven tables; ``registry`` came later in layout 1.
LAYOUT1_TABLES = [name for name in TABLES if name != "registry"]


def build(root: Path) -> Path:
    """Write the layout-1 root at ``root`` (which must not exist yet); returns it."""
    root.mkdir(parents=True)
    for name in LAYOUT1_TABLES:
        spec = TABLES[name]
        uri = str(root / "tables" / name)
        DeltaTable.create(uri, schema=spec.schema, name=name, description=f"sparkml_ops layout 1: {spec.doc}",
                          configuration=LAYOUT1_CONFIGURATION)
        if name in ROWS:
            write_deltalake(uri, pa.Table.from_pylist(ROWS[name], schema=spec.schema), mode="append")
    (root / "_sparkml_ops.json").write_text(json.dumps(
        {"layout_version": 1, "format": "sparkml_ops", "tables": sorted(LAYOUT1_TABLES)}))
    return root


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
