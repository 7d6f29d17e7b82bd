"""The protobuf-free ``runs/log-batch`` route answers exactly as MLflow's handler does.

Every body below goes to our server (plain bodies take the fast route, the rest MLflow's
handler) and to ``mlflow server`` on SQLite; status, error code and what was logged must match.
"""

from __future__ import annotations

import json

import pytest
import requests

from sparkml_ops.server.fast_log_batch import plain_batch
from tests.server.serverproc import mlflow_sqlite_server

API = "/api/2.0/mlflow"


def _metrics(n: int, **extra) -> list[dict]:
    return [{"key": f"m{i % 3}", "value": i * 0.5, "timestamp": 1_000 + i, "step": i, **extra} for i in range(n)]


# name -> (body without run_id, content type); run_id is added per server (None: left out)
BODIES: dict[str, tuple[dict | str, str]] = {
    "plain metrics": ({"metrics": _metrics(50)}, "application/json"),
    "int values, no step": ({"metrics": [{"key": "a", "value": 3, "timestamp": 5}]}, "application/json"),
    "params and tags": ({"params": [{"key": "p", "value": "1"}], "tags": [{"key": "t", "value": "x"}]},
                        "application/json; charset=utf-8"),
    "empty batch": ({}, "application/json"),
    "changed param": ({"params": [{"key": "p", "value": "2"}]}, "application/json"),
    "missing timestamp": ({"metrics": [{"key": "a", "value": 1}]}, "application/json"),
    "bool value": ({"metrics": [{"key": "a", "value": True, "timestamp": 1}]}, "application/json"),
    "string value": ({"metrics": [{"key": "a", "value": "1.5", "timestamp": 1}]}, "application/json"),
    "NaN value": ({"metrics": [{"key": "a", "value": "NaN", "timestamp": 1}]}, "application/json"),
    "empty key": ({"metrics": [{"key": "", "value": 1, "timestamp": 1}]}, "application/json"),
    "bad key": ({"metrics": [{"key": "a/../b", "value": 1, "timestamp": 1}]}, "application/json"),
    "too many metrics": ({"metrics": _metrics(1001)}, "application/json"),
    "int param value": ({"params": [{"key": "q", "value": 1}]}, "application/json"),
    "unknown field": ({"metrics": _metrics(1), "extra": 1}, "application/json"),
    "not a list": ({"metrics": {"key": "a"}}, "application/json"),
    "wrong content type": ({"metrics": _metrics(2)}, "text/plain"),
}
NOT_JSON = "{not json"  # MLflow's server answers 500 (len(None) in its handler); ours a 400, by design


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    with mlflow_sqlite_server(base / "sqlite", base / "reference.log") as running:
        yield running


def _new_run(url: str) -> str:
    experiment = requests.post(f"{url}{API}/experiments/create", json={"name": "batches"}, timeout=30).json()
    run = requests.post(f"{url}{API}/runs/create", json={"experiment_id": experiment["experiment_id"]}, timeout=30)
    return run.json()["run"]["info"]["run_id"]


def _send(url: str, run_id: str, body: dict | str, content_type: str) -> tuple[int, str | None]:
    data = body if isinstance(body, str) else json.dumps({"run_id": run_id, **body})
    answer = requests.post(f"{url}{API}/runs/log-batch", data=data, headers={"Content-Type": content_type},
                           timeout=60)
    code = answer.json().get("error_code") if answer.headers.get("content-type", "").startswith("application/json") \
        else None
    return answer.status_code, code


def _logged(url: str, run_id: str) -> dict:
    run = requests.get(f"{url}{API}/runs/get", params={"run_id": run_id}, timeout=30).json()["run"]["data"]
    histories = {}
    for key in sorted({m["key"] for m in run.get("metrics", [])}):
        points = requests.get(f"{url}{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key},
                              timeout=30).json()["metrics"]
        histories[key] = sorted((p["step"], p["timestamp"], str(p["value"])) for p in points)
    return {"metrics": histories, "params": sorted((p["key"], p["value"]) for p in run.get("params", [])),
            "tags": sorted((t["key"], t["value"]) for t in run.get("tags", []) if not t["key"].startswith("mlflow."))}


def test_every_body_gets_mlflows_answer_and_logs_the_same(server, reference):
    ours_run, reference_run = _new_run(server.url), _new_run(reference.url)
    answers = {}
    for name, (body, content_type) in BODIES.items():
        answers[name] = (_send(server.url, ours_run, body, content_type),
                         _send(reference.url, reference_run, body, content_type))
    differing = {name: pair for name, pair in answers.items() if pair[0] != pair[1]}
    assert not differing, f"answers differ (ours, MLflow's): {differing}"
    assert answers["plain metrics"][0] == (200, None) and answers["bad key"][0][0] == 400
    assert _send(server.url, ours_run, NOT_JSON, "application/json") == (400, "INVALID_PARAMETER_VALUE")
    assert _logged(server.url, ours_run) == _logged(reference.url, reference_run)


def test_unknown_run_is_mlflows_not_found(server, reference):
    ours = _send(server.url, "0" * 32, {"metrics": _metrics(1)}, "application/json")
    theirs = _send(reference.url, "0" * 32, {"metrics": _metrics(1)}, "application/json")
    assert ours == theirs == (404, "RESOURCE_DOES_NOT_EXIST")


def test_only_plain_bodies_take_the_fast_route():
    plain = plain_batch(json.dumps({"run_id": "r", "metrics": _metrics(3), "params": [{"key": "p", "value": "v"}]})
                        .encode())
    assert plain is not None
    run_id, metrics, params, tags = plain
    assert run_id == "r" and [(m.key, m.value, m.timestamp, m.step) for m in metrics] == [
        ("m0", 0.0, 1000, 0), ("m1", 0.5, 1001, 1), ("m2", 1.0, 1002, 2)]
    assert [(p.key, p.value) for p in params] == [("p", "v")] and tags == []
    for name in ("missing timestamp", "bool value", "string value", "too many metrics", "int param value",
                 "unknown field", "not a list", "empty key"):
        body = BODIES[name][0]
        assert plain_batch(json.dumps({"run_id": "r", **body}).encode()) is None, name
    assert plain_batch(NOT_JSON.encode()) is None
    assert plain_batch(json.dumps({"run_uuid": "r", "metrics": _metrics(1)}).encode()) is None
    assert plain_batch(json.dumps({"run_id": "r", "metrics": [{"key": "a", "value": 1, "timestamp": 2**63}]})
                       .encode()) is None
