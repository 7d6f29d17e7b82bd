"""``sparkml-ops models list|versions|promote``: the registry from a terminal."""

from __future__ import annotations

import json

from tests.cli_run import run_cli


def _filled(registry) -> None:
    registry.create_registered_model("fraud", description="card fraud")
    for i in range(3):
        registry.create_model_version("fraud", f"/src/fraud/{i + 1}", run_id=f"run{i + 1}")
    registry.set_registered_model_alias("fraud", "champion", 2)
    registry.create_registered_model("churn")


def test_list_versions_promote(registry, tracking_uri, capsys):
    _filled(registry)
    assert run_cli("models", "list", "--root", tracking_uri) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"]
    assert out[1].split()[0] == "churn" and out[2].split()[:3] == ["fraud", "3", "champion=2"]

    assert run_cli("models", "versions", "fraud", "--root", tracking_uri, "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["aliases"], r["source"]) for r in rows] == [
        (3, "", "/src/fraud/3"), (2, "champion", "/src/fraud/2"), (1, "", "/src/fraud/1")]

    assert run_cli("models", "promote", "fraud", "3", "--alias", "champion", "--root", tracking_uri) == 0
    assert capsys.readouterr().out.strip() == "fraud@champion -> version 3 (was version 2)"
    assert registry.get_model_version_by_alias("fraud", "champion").version == 3

    assert run_cli("models", "list", "--root", tracking_uri, "--filter", "name = 'churn'", "--format", "json") == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["churn"]


def test_bad_input_is_one_line_and_changes_nothing(registry, tracking_uri, capsys):
    _filled(registry)
    cases = [
        (("models", "versions", "nope"), "Registered Model with name=nope not found"),
        (("models", "promote", "fraud", "9", "--alias", "champion"), "Model Version (name=fraud, version=9) not found"),
        (("models", "promote", "fraud", "x", "--alias", "champion"), "version"),
        (("models", "promote", "fraud", "1", "--alias", "latest"), "'latest' alias name (case insensitive)"),
        (("models", "list", "--filter", "bogus = 1"), "Invalid attribute key 'bogus'"),
    ]
    for args, message in cases:
        assert run_cli(*args, "--root", tracking_uri) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("sparkml-ops: error: ") and message in err and "Traceback" not in err, err
    assert registry.get_model_version_by_alias("fraud", "champion").version == 2
