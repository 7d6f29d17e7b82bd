"""``models serve -m models:/x@champion --follow``: an alias move swaps the served version under
concurrent load without a failed request; ``/version`` and a header name the version that answered."""

from __future__ import annotations

import threading
import time

import httpx
import mlflow

from tests.models.serving.conftest import FEATURES, flush_store, start_server, training_frame


def _log_and_register(flip: bool) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    frame, target = training_frame()
    model = LogisticRegression().fit(frame, 1 - target if flip else target)
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", input_example=frame.head(2), registered_model_name="fraud",
                                 pip_requirements=mlflow.sklearn.get_default_pip_requirements())


def test_follow_swaps_under_load_without_a_failed_request(tracking_uri, tmp_path):
    _log_and_register(flip=False)
    _log_and_register(flip=True)  # version 2 answers the opposite class
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("fraud", "champion", 1)
    flush_store()
    server = start_server("models:/fraud@champion", tracking_uri, tmp_path, "--follow", "--follow-interval", "0.5",
                          timeout=600)
    frame = training_frame(rows=4, seed=7)[0]
    body = {"dataframe_split": {"columns": FEATURES, "data": frame.to_numpy().tolist()}}
    expected = {1: None, 2: None}
    failures: list[str] = []
    answers: list[list[tuple[float, int, list]]] = [[] for _ in range(8)]
    stop = threading.Event()

    def load(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post("/invocations", json=body)
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text}")
                    continue
                answers[i].append((time.monotonic(), int(response.headers["x-model-version"]),
                                   response.json()["predictions"]))

    try:
        assert httpx.get(server.url + "/version").json()["model_version"] == 1
        threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(2)
        moved_at = time.monotonic()
        client.set_registered_model_alias("fraud", "champion", 2)
        deadline = moved_at + 60
        while time.monotonic() < deadline and httpx.get(server.url + "/version").json()["model_version"] != 2:
            time.sleep(0.1)
        time.sleep(2)  # keep the load on after the swap
        stop.set()
        for t in threads:
            t.join()
        version = httpx.get(server.url + "/version").json()
    finally:
        stop.set()
        assert server.stop() == 0, server.output()
    assert failures == []
    assert (version["model_version"], version["swaps"], version["model_name"]) == (2, 1, "fraud")
    for thread_answers in answers:
        versions = [v for _, v, _ in thread_answers]
        assert versions == sorted(versions), "a client saw the old version after the new one"
        for _, v, predictions in thread_answers:
            expected[v] = expected[v] or predictions
            assert predictions == expected[v]  # each version always answers the same
    assert expected[1] is not None and expected[2] is not None
    assert [1 - p for p in expected[1]] == expected[2]  # the header named the model that answered
    assert any(v == 2 and t > moved_at for a in answers for t, v, _ in a)  # load kept flowing through the swap
