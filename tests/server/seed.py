"""The same data, logged over HTTP with MLflow's stock client, into any tracking server.

What a new user has after the quickstart: an experiment with a few runs (params, metric
histories, tags, a description, a text file, an image, a scikit-learn model and a training
dataset), a logged model and a registered model version with an alias.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

BASE_TS = 1_700_000_000_000


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str]
    model_id: str
    model_name: str = "quickstart-model"
    extra: dict[str, str] = field(default_factory=dict)


def _png() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 48), (30, 120, 200))
    for x in range(64):
        image.putpixel((x, x * 48 // 64), (250, 250, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def seed(url: str, *, register: bool = True) -> Seeded:
    """Log the quickstart's data into the server at ``url``; returns the ids the pages need."""
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    experiment_id = client.create_experiment("quickstart")
    frame = pd.DataFrame({"x1": np.linspace(0, 1, 40), "x2": np.linspace(1, 0, 40)})
    labels = (frame["x1"] > 0.5).astype(int)
    run_ids, model_id = [], ""
    for k, (lr, depth) in enumerate([(0.1, 3), (0.05, 5), (0.01, 8)]):
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"trial-{k}",
                              description=f"Trial {k}: learning rate {lr}") as run:
            run_id = run.info.run_id
            client.log_batch(run_id, params=[Param("lr", str(lr)), Param("depth", str(depth))],
                             tags=[RunTag("team", "vision" if k % 2 else "nlp")],
                             metrics=[Metric("loss", float(np.exp(-i * lr)), 1_700_000_000_000 + i, i)
                                      for i in range(50)]
                             + [Metric("accuracy", 0.6 + 0.1 * k, 1_700_000_000_100, 49)])
            mlflow.log_input(mlflow.data.from_pandas(frame, name="train"), context="training")
            mlflow.log_text(f"trial {k}\nlr={lr}\n", "notes/readme.txt")
            mlflow.log_dict({"lr": lr, "depth": depth}, "config/params.json")
            _log_png(run_id, client)
            if k == 0:
                model = LogisticRegression().fit(frame, labels)
                info = mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3))
                model_id = info.model_id
            run_ids.append(run_id)
    seeded = Seeded(experiment_id, run_ids, model_id)
    if register:
        register_model(url, seeded)
    return seeded


def _log_png(run_id: str, client: MlflowClient) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "curve.png"
        path.write_bytes(_png())
        client.log_artifact(run_id, str(path), "plots")


def register_model(url: str, seeded: Seeded) -> None:
    """A registered model with one version (from the logged model) and the alias ``champion``."""
    client = MlflowClient(url, registry_uri=url)
    client.create_registered_model(seeded.model_name, description="The quickstart's classifier")
    version = client.create_model_version(seeded.model_name, f"models:/{seeded.model_id}",
                                          run_id=seeded.run_ids[0], model_id=seeded.model_id)
    client.set_registered_model_alias(seeded.model_name, "champion", version.version)
    seeded.extra["version"] = str(version.version)


@dataclass
class Scale:
    experiment_id: str
    long_run: str
    runs: int
    steps: int

    @staticmethod
    def run_name(i: int) -> str:
        return f"bulk-{i:06d}"


def fill_scale(root: Path, *, runs: int, steps: int, name: str = "scale") -> Scale:
    """``runs`` runs (a ``seed`` param, a ``score`` metric) and one run with a ``steps``-step
    ``acc`` history, written through our store's own write path (``Lake.append``: WAL, then
    one group commit per table) rather than one HTTP call per run: seconds, not minutes.

    Call before a server opens ``root``; the lake is closed again on return.
    """
    from sparkml_ops.lake import Lake, parse_root
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = DeltaTrackingStore(f"delta:{root}")
    experiment_id = store.create_experiment(name)
    location = store.get_experiment(experiment_id).artifact_location.rstrip("/")
    ids = [uuid.uuid4().hex for _ in range(runs)]
    names = [Scale.run_name(i) for i in range(runs)]
    starts = [BASE_TS + i for i in range(runs)]
    long_run = store.create_run(experiment_id, "seed", BASE_TS - 1, [], "long-history").info.run_id
    store.lake.append("runs", {
        "run_id": ids, "experiment_id": [experiment_id] * runs, "run_name": names, "user_id": ["seed"] * runs,
        "status": ["FINISHED"] * runs, "start_time": starts, "end_time": starts,
        "lifecycle_stage": ["active"] * runs, "artifact_uri": [f"{location}/{r}/artifacts" for r in ids],
        "deleted_time": [None] * runs})
    store.lake.append("params", {"run_id": ids, "key": ["seed"] * runs, "value": [str(i) for i in range(runs)]})
    store.lake.append("tags", {"run_id": ids, "key": ["mlflow.runName"] * runs, "value": names,
                               "deleted": [False] * runs})
    _append_metrics(store, ids, "score", [(i * 7919 % runs) / runs for i in range(runs)], [1] * runs, [0] * runs)
    _append_metrics(store, [long_run] * steps, "acc", (np.arange(steps) / steps).tolist(),
                    (BASE_TS + np.arange(steps)).tolist(), list(range(steps)))
    store.flush()
    Lake._open[parse_root(f"delta:{root}")].close()
    return Scale(experiment_id, long_run, runs, steps)


def _append_metrics(store: Any, run_ids: list[str], key: str, values: list[float], timestamps: list[int],
                    steps: list[int]) -> None:
    n = len(run_ids)
    store.lake.append("metrics", {"run_id": run_ids, "key": [key] * n, "value": values, "timestamp": timestamps,
                                  "step": steps, "model_id": [None] * n, "dataset_name": [None] * n,
                                  "dataset_digest": [None] * n})
