"""The same call sequences on our Delta registry and on MLflow's SQLite registry store give the
same entities (ids and timestamps masked) and the same errors (code and message)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.exceptions import MlflowException

_TIMES = {"creation_timestamp", "last_updated_timestamp"}


def _plain(value: Any) -> Any:
    """Entities as comparable plain data: timestamps masked, unordered lists sorted."""
    if isinstance(value, list):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if all(isinstance(v, dict) for v in items) else items
    if hasattr(value, "__iter__") and hasattr(value, "_get_properties_helper"):
        return {k: ("<time>" if k in _TIMES and v is not None else _plain(v)) for k, v in dict(value).items()}
    if hasattr(value, "token") and isinstance(value, list):
        return value
    return value


def _outcome(store, method: str, *args: Any, **kwargs: Any) -> Any:
    try:
        result = getattr(store, method)(*args, **kwargs)
    except MlflowException as exc:
        return ("error", exc.error_code, exc.message.split(" Error: ")[0])
    if hasattr(result, "token"):
        return ("page", [_plain(r) for r in result], result.token is not None)
    return ("ok", _plain(result))


class Both:
    """Runs each call on both stores and asserts the outcomes match."""

    def __init__(self, ours, reference) -> None:
        self.ours, self.reference = ours, reference
        self.prefix = f"t{uuid.uuid4().hex[:8]}-"  # the SQLite store is shared by the session

    def n(self, name: str) -> str:
        return self.prefix + name

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        ours = _outcome(self.ours, method, *args, **kwargs)
        reference = _outcome(self.reference, method, *args, **kwargs)
        assert ours == reference, f"{method}{args}{kwargs}"
        return ours


@pytest.fixture
def both(registry, sqlite_registry) -> Both:
    return Both(registry, sqlite_registry)


def test_registered_model_lifecycle(both):
    m, other = both.n("model"), both.n("other")
    assert both("create_registered_model", m, [RegisteredModelTag("team", "fraud")], "first")[0] == "ok"
    assert both("create_registered_model", m)[1:] == (
        "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={m}) already exists.")
    assert both("create_registered_model", "")[1] == "INVALID_PARAMETER_VALUE"
    for slashed in ("a/b", "a:b"):  # refused since MLflow 3.7, accepted by 3.6: either way, as MLflow does
        both("create_registered_model", both.n(slashed))
    assert both("create_registered_model", m + "x", [RegisteredModelTag("", "v")])[0] == "error"
    assert both("get_registered_model", both.n("missing"))[1] == "RESOURCE_DOES_NOT_EXIST"
    both("update_registered_model", m, "second")
    both("create_registered_model", other)
    assert both("rename_registered_model", m, other)[1] == "RESOURCE_ALREADY_EXISTS"
    assert both("rename_registered_model", both.n("missing"), both.n("new"))[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("rename_registered_model", m, "")[1] == "INVALID_PARAMETER_VALUE"
    both("set_registered_model_tag", m, RegisteredModelTag("stage", "dev"))
    both("set_registered_model_tag", m, RegisteredModelTag("stage", "prod"))
    both("delete_registered_model_tag", m, "team")
    both("delete_registered_model_tag", m, "never-set")
    assert both("set_registered_model_tag", both.n("missing"), RegisteredModelTag("k", "v"))[0] == "error"
    renamed = both.n("renamed")
    both("rename_registered_model", m, renamed)
    assert both("get_registered_model", m)[0] == "error"
    assert both("get_registered_model", renamed)[1]["tags"] == {"stage": "prod"}
    both("delete_registered_model", renamed)
    assert both("get_registered_model", renamed)[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("delete_registered_model", renamed)[1] == "RESOURCE_DOES_NOT_EXIST"
    both("create_registered_model", renamed)
    assert both("get_registered_model", renamed)[1]["tags"] == {}


def test_model_versions_stages_and_tags(both):
    m = both.n("model")
    assert both("create_model_version", m, "/src/0")[1] == "RESOURCE_DOES_NOT_EXIST"
    both("create_registered_model", m)
    for i in range(1, 4):
        result = both("create_model_version", m, f"/src/{i}", run_id=f"run{i}",
                      tags=[ModelVersionTag("i", str(i))], run_link="http://x", description=f"v{i}")
        assert result[1]["version"] == i
    assert both("get_model_version", m, "abc")[1] == "INVALID_PARAMETER_VALUE"
    assert both("get_model_version", m, 99)[1:] == (
        "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={m}, version=99) not found")
    both("update_model_version", m, 2, "changed")
    both("transition_model_version_stage", m, 1, "staging", False)
    both("transition_model_version_stage", m, 2, "Production", False)
    both("transition_model_version_stage", m, 3, "production", True)
    assert both("get_model_version", m, 2)[1]["current_stage"] == "Archived"
    assert both("transition_model_version_stage", m, 1, "bogus", False)[1] == "INVALID_PARAMETER_VALUE"
    assert both("transition_model_version_stage", m, 1, "Archived", True)[0] == "error"
    for stages in (None, [], ["Production"], ["staging", "Archived"], ["None"]):
        both("get_latest_versions", m, stages)
    assert both("get_latest_versions", m, ["nope"])[1] == "INVALID_PARAMETER_VALUE"
    both("set_model_version_tag", m, 1, ModelVersionTag("k", "v"))
    both("delete_model_version_tag", m, 1, "i")
    both("delete_model_version_tag", m, 1, "absent")
    assert both("set_model_version_tag", m, 7, ModelVersionTag("k", "v"))[1] == "RESOURCE_DOES_NOT_EXIST"
    both("delete_model_version", m, 3)
    assert both("get_model_version", m, 3)[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("delete_model_version", m, 3)[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("create_model_version", m, "/src/4")[1]["version"] == 4  # numbers are never reused
    both("get_model_version_download_uri", m, 1)
    both("get_registered_model", m)
    both("rename_registered_model", m, both.n("renamed"))
    both("get_model_version", both.n("renamed"), 2)
    both("copy_model_version", both.reference.get_model_version(both.n("renamed"), 2), both.n("copy"))
    both("get_model_version", both.n("copy"), 1)
    both("get_model_version_download_uri", both.n("copy"), 1)


def test_aliases(both):
    m = both.n("model")
    both("create_registered_model", m)
    for i in range(3):
        both("create_model_version", m, f"/src/{i}")
    both("set_registered_model_alias", m, "champion", 1)
    both("set_registered_model_alias", m, "challenger", 1)
    assert both("get_model_version_by_alias", m, "champion")[1]["aliases"] == ["challenger", "champion"]
    both("set_registered_model_alias", m, "champion", 2)
    assert both("get_model_version_by_alias", m, "champion")[1]["version"] == 2
    assert both("get_model_version_by_alias", m, "latest")[1]["version"] == 3
    assert both("set_registered_model_alias", m, "latest", 1)[1] == "INVALID_PARAMETER_VALUE"
    assert both("set_registered_model_alias", m, "v3", 1)[1] == "INVALID_PARAMETER_VALUE"
    assert both("set_registered_model_alias", m, "", 1)[1] == "INVALID_PARAMETER_VALUE"
    assert both("set_registered_model_alias", m, "best", 9)[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("set_registered_model_alias", both.n("missing"), "best", 1)[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("get_model_version_by_alias", m, "nobody")[1:] == (
        "INVALID_PARAMETER_VALUE", "Registered model alias nobody not found.")
    assert both("get_model_version_by_alias", both.n("missing"), "champion")[1] == "RESOURCE_DOES_NOT_EXIST"
    both("get_registered_model", m)
    both("delete_model_version", m, 2)  # its alias goes with it
    assert both("get_model_version_by_alias", m, "champion")[0] == "error"
    both("delete_registered_model_alias", m, "challenger")
    both("delete_registered_model_alias", m, "challenger")
    assert both("delete_registered_model_alias", both.n("missing"), "x")[1] == "RESOURCE_DOES_NOT_EXIST"
    assert both("get_registered_model", m)[1]["aliases"] == {}
    empty = both.n("empty")
    both("create_registered_model", empty)
    assert both("get_model_version_by_alias", empty, "latest")[1] == "RESOURCE_DOES_NOT_EXIST"


def test_search(both):
    names = [both.n(x) for x in ("alpha", "beta", "gamma")]
    for i, name in enumerate(names):
        both("create_registered_model", name, [RegisteredModelTag("team", "a" if i < 2 else "b")])
        for v in range(i + 2):
            both("create_model_version", name, f"/src/{name}/{v}", run_id=f"r{v}", tags=[ModelVersionTag("v", str(v))])
    p = both.prefix
    for flt in (f"name='{names[0]}'", f"name LIKE '{p}%a'", f"name ILIKE '{p.upper()}%A%'",
                f"name IN ('{names[0]}', '{names[2]}')", "run_id = 'r1'",
                f"run_id IN ('r0', 'r2') AND name LIKE '{p}%'",
                f"version_number > 1 AND name LIKE '{p}%'", f"version_number <= 2 AND name LIKE '{p}%'",
                f"tags.v = '1' AND name LIKE '{p}%'", f"tags.v != '0' AND name LIKE '{p}%'",
                f"source_path = '/src/{names[1]}/1'", f"name NOT IN ('{names[0]}') AND name LIKE '{p}%'"):
        for order in (None, ["name ASC", "version_number ASC"], ["version_number DESC"], ["name DESC"]):
            both("search_model_versions", flt, order_by=order)
    for bad in ("foo = 'x'", "version_number = 'x'", "version_number LIKE '1'", "source_path IN ('a')",
                "tags.v > '1'", "name = "):
        assert both("search_model_versions", bad)[1] == "INVALID_PARAMETER_VALUE", bad
    for bad_order in (["creation"], ["name ASC", "name DESC"]):
        assert both("search_model_versions", None, order_by=bad_order)[0] == "error"
    assert both("search_model_versions", None, max_results=0)[1] == "INVALID_PARAMETER_VALUE"
    assert both("search_model_versions", None, max_results=10**6)[1] == "INVALID_PARAMETER_VALUE"
    tokens = [None]
    pages = []
    while True:  # paging through both stores in step
        ours = both.ours.search_model_versions(f"name LIKE '{p}%'", 2, ["name ASC"], tokens[-1])
        reference = both.reference.search_model_versions(f"name LIKE '{p}%'", 2, ["name ASC"], tokens[-1])
        assert [_plain(v) for v in ours] == [_plain(v) for v in reference]
        assert (ours.token is None) == (reference.token is None)
        pages.append(len(ours))
        if ours.token is None:
            break
        tokens.append(ours.token)
    assert sum(pages) == 9
    for flt in (f"name LIKE '{p}%'", f"name = '{names[1]}'", f"tags.team = 'a' AND name LIKE '{p}%'",
                f"tags.team != 'a' AND name LIKE '{p}%'",
                f"name IN ('{names[2]}')"):
        for order in (None, ["name DESC"]):
            out = both("search_registered_models", flt, order_by=order)
            assert out[0] == "page"
    for bad in ("version = 1", "tags.team > 'a'", "name = "):
        assert both("search_registered_models", bad)[1] == "INVALID_PARAMETER_VALUE", bad
    assert both("search_registered_models", None, order_by=["foo"])[1] == "INVALID_PARAMETER_VALUE"
    assert both("search_registered_models", None, max_results=5000)[1] == "INVALID_PARAMETER_VALUE"
    assert both("search_registered_models", f"name LIKE '{p}%'", max_results=2, order_by=["name ASC"])[2] is True
