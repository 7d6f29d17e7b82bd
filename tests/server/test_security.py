"""Safe by default: loopback unless told, ``--auth`` users and permissions, malformed input changes nothing."""

from __future__ import annotations

import json
import re

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkml_ops.errors import BadInput
from sparkml_ops.server.settings import ServerSettings
from tests.server.serverproc import sparkml_server


def test_non_loopback_bind_needs_auth_or_insecure():
    with pytest.raises(BadInput, match=r"--host '0.0.0.0' is not a loopback address.*--auth.*--insecure"):
        ServerSettings(tracking_uri="delta:/tmp/x", host="0.0.0.0")
    assert ServerSettings(tracking_uri="delta:/tmp/x", host="0.0.0.0", auth=True).host == "0.0.0.0"
    assert ServerSettings(tracking_uri="delta:/tmp/x", host="0.0.0.0", insecure=True).host == "0.0.0.0"
    for loopback in ("127.0.0.1", "localhost", "::1", "127.8.9.10"):
        assert ServerSettings(tracking_uri="delta:/tmp/x", host=loopback).host == loopback
    with pytest.raises(BadInput, match="--workers 0 must be an integer in 1..64"):
        ServerSettings(tracking_uri="delta:/tmp/x", workers=0)


def test_auth_without_an_admin_password_refuses_to_start(tmp_path, monkeypatch):
    from sparkml_ops.lake import parse_root
    from sparkml_ops.server.auth import prepare_auth

    monkeypatch.delenv("SPARKML_OPS_ADMIN_PASSWORD", raising=False)
    settings_ = ServerSettings(tracking_uri=f"delta:{tmp_path}", auth=True)
    with pytest.raises(BadInput, match=r"needs the first admin's password: set \$SPARKML_OPS_ADMIN_PASSWORD"):
        prepare_auth(settings_, parse_root(settings_.tracking_uri))


ADMIN_PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth") / "lake"
    with sparkml_server(root, root.parent / "server.log", auth=True,
                        env={"SPARKML_OPS_ADMIN_PASSWORD": ADMIN_PASSWORD}) as server:
        yield server, root


def test_auth_requires_credentials_and_enforces_read_only_users(auth_server):
    server, root = auth_server
    api = f"{server.url}/api/2.0/mlflow"
    admin = ("admin", ADMIN_PASSWORD)
    assert requests.get(f"{api}/experiments/search", params={"max_results": 5}).status_code == 401
    assert requests.get(f"{api}/experiments/search", params={"max_results": 5},
                        auth=("admin", "wrong")).status_code == 401
    created = requests.post(f"{api}/experiments/create", json={"name": "secured"}, auth=admin)
    assert created.status_code == 200, created.text
    experiment_id = created.json()["experiment_id"]
    user = requests.post(f"{api}/users/create", json={"username": "reader", "password": "reader-password-123"},
                         auth=admin)
    assert user.status_code == 200, user.text
    reader = ("reader", "reader-password-123")
    read = requests.get(f"{api}/experiments/get", params={"experiment_id": experiment_id}, auth=reader)
    assert read.status_code == 200
    write = requests.post(f"{api}/runs/create", json={"experiment_id": experiment_id}, auth=reader)
    assert write.status_code == 403, write.text
    rename = requests.post(f"{api}/experiments/update", json={"experiment_id": experiment_id, "new_name": "mine"},
                           auth=reader)
    assert rename.status_code == 403
    runs = requests.post(f"{api}/runs/search", json={"experiment_ids": [experiment_id]}, auth=admin).json()
    assert runs.get("runs", []) == []
    assert (root / "_auth" / "users.db").is_file()
    assert oct((root / "_auth" / "basic_auth.ini").stat().st_mode & 0o777) == "0o600"


# --------------------------------------------------------------------- malformed input


def _post_endpoints() -> list[str]:
    from mlflow.server.handlers import get_endpoints

    # Workspaces are a feature this server does not enable: MLflow answers 503 "disabled" there.
    paths = {re.sub(r"<[^>]+>", "x", path) for path, _, methods in get_endpoints()
             if path.startswith("/api/") and set(methods) & {"POST", "PATCH"} and "/workspaces" not in path}
    return sorted(paths)


def _fingerprint(server_url: str) -> str:
    api = f"{server_url}/api/2.0/mlflow"
    experiments = requests.post(f"{api}/experiments/search", json={"max_results": 1000, "view_type": "ALL"}).json()
    ids = [e["experiment_id"] for e in experiments.get("experiments", [])]
    runs = requests.post(f"{api}/runs/search", json={"experiment_ids": ids, "run_view_type": "ALL",
                                                     "max_results": 1000}).json()
    for experiment in experiments.get("experiments", []):
        experiment.pop("last_update_time", None)
    return json.dumps([experiments, runs], sort_keys=True)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
_not_string = st.integers() | st.booleans() | st.lists(st.integers(), max_size=3) | st.dictionaries(
    st.text(max_size=5), st.integers(), max_size=2)
_not_list = st.integers() | st.booleans() | st.dictionaries(st.text(max_size=5), st.integers(), min_size=1, max_size=2)
_WRONG_TYPES = {
    **dict.fromkeys(["run_id", "experiment_id", "name", "key", "value", "filter", "new_name"], _not_string),
    **dict.fromkeys(["metrics", "params", "tags", "run_ids", "order_by", "experiment_ids"], _not_list),
    "max_results": st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(),
                                                                           max_size=1) | st.booleans(),
}
_malformed = st.one_of(
    st.binary(min_size=1, max_size=64).filter(lambda b: b.strip() and not _is_json_object(b)),  # not JSON
    _json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),  # not an object
)
# Objects whose known fields have the wrong type: a field the endpoint does not take is ignored
# (MLflow's parser skips unknown fields), so these must never be a 5xx, and never change anything.
_mistyped = st.fixed_dictionaries({}, optional=_WRONG_TYPES).filter(bool).map(lambda d: json.dumps(d).encode())


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


@pytest.fixture(scope="module")
def seeded(server):
    api = f"{server.url}/api/2.0/mlflow"
    experiment_id = requests.post(f"{api}/experiments/create", json={"name": "untouchable"}).json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": experiment_id}).json()["run"]["info"]["run_id"]
    requests.post(f"{api}/runs/log-batch", json={"run_id": run, "params": [{"key": "p", "value": "1"}]})
    return _fingerprint(server.url)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_json_to_every_endpoint_is_a_4xx_and_changes_nothing(server, seeded, data):
    path = data.draw(st.sampled_from(_post_endpoints()), label="endpoint")
    malformed = data.draw(st.booleans(), label="malformed")
    body = data.draw(_malformed if malformed else _mistyped, label="body")
    response = requests.post(server.url + path, data=body, headers={"Content-Type": "application/json"})
    if malformed:
        assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text[:300])
    else:
        assert response.status_code < 500, (path, body, response.status_code, response.text[:300])


def test_after_the_malformed_requests_nothing_changed(server, seeded):
    assert _fingerprint(server.url) == seeded


def test_cli_refuses_an_open_bind_and_bad_options_in_one_line(tmp_path):
    import subprocess
    import sys

    for args, message in (
        (["--host", "0.0.0.0"], "is not a loopback address"),
        (["--workers", "0"], "Invalid value for '--workers'"),
        (["--auth", "--admin-password-file", str(tmp_path / "missing")], "cannot be read"),
    ):
        done = subprocess.run([sys.executable, "-m", "sparkml_ops.cli", "server", "--root", str(tmp_path / "lake"),
                               *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr[-1000:])
        assert "Traceback" not in done.stderr
