"""An id is usable by every process on the root as soon as the call that created it returns."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection

import pytest


def _user(uri: str, conn: Connection) -> None:
    """Another process: uses each id it is handed at once, answers 'ok' or the error."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    client.search_experiments()  # open the root (and warm its snapshots) before the first id arrives
    conn.send("ready")
    while (message := conn.recv()) is not None:
        kind, entity_id = message
        try:
            if kind == "experiment":
                client.create_run(entity_id)
            elif kind == "run":
                client.log_metric(entity_id, "m", 1.0, step=0)
            else:
                client.get_logged_model(entity_id)
            conn.send("ok")
        except Exception as exc:
            conn.send(f"{kind} {entity_id}: {type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_created_ids_are_usable_by_another_process_at_once(tracking_uri):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.search_experiments()
    parent, child = mp.Pipe()
    user = mp.get_context("spawn").Process(target=_user, args=(tracking_uri, child))
    user.start()
    try:
        assert parent.recv() == "ready"
        failures = []
        experiment_id = "0"
        for i in range(1000):
            if i % 50 == 0:
                experiment_id = client.create_experiment(f"exp-{i}")
                message = ("experiment", experiment_id)
            elif i % 50 == 1:
                run_id = client.create_run(experiment_id).info.run_id
                message = ("logged_model", client.create_logged_model(experiment_id, source_run_id=run_id).model_id)
            else:
                message = ("run", client.create_run(experiment_id).info.run_id)
            parent.send(message)
            if (answer := parent.recv()) != "ok":
                failures.append(answer)
        parent.send(None)
    finally:
        user.join(30)
        if user.is_alive():
            user.kill()
    assert failures == [], f"{len(failures)} of 1000 fresh ids were unusable in another process: {failures[:3]}"
