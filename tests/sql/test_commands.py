"""``sparkml-ops sql`` and ``sparkml-ops lineage`` through the click CLI."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from tests.cli_run import run_cli

QUERY = "SELECT run_name, params['lr'] AS lr, metrics['auc'] AS auc, tags FROM runs_wide ORDER BY run_name"


def test_sql_prints_a_table(filled, capfd):
    root, _, _ = filled
    assert run_cli("sql", QUERY, "--root", root) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0].split() == ["run_name", "lr", "auc", "tags"]
    assert out[2].split()[:3] == ["a", "0.1", "0.7"]
    assert '"team": "x"' in out[2]
    assert out[-1] == "(6 rows)"


def test_sql_formats(filled, tmp_path, capfd):
    root, _, _ = filled
    assert run_cli("sql", QUERY, "--root", root, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert [r["run_name"] for r in rows] == ["a", "b", "c", "d", "e", "f"]
    assert json.loads(rows[0]["tags"])["team"] == "x"
    assert run_cli("sql", QUERY, "--root", root, "--format", "json") == 0
    data = json.loads(capfd.readouterr().out)
    assert data[1]["lr"] == "0.01" and data[1]["tags"]["team"] == "y" and data[3]["auc"] is None
    out = tmp_path / "result.parquet"
    assert run_cli("sql", QUERY, "--root", root, "--format", "parquet", "-o", str(out)) == 0
    assert pq.read_table(out).num_rows == 6


def test_sql_as_of_and_errors(filled, capfd):
    root, _, _ = filled
    assert run_cli("sql", "SELECT count(*) AS n FROM runs", "--root", root, "--as-of", "2001-01-01T00:00Z",
                    "--format", "json") == 0
    assert json.loads(capfd.readouterr().out) == [{"n": 0}]
    assert run_cli("sql", "DELETE FROM runs", "--root", root) == 2
    assert "only read-only SELECT" in capfd.readouterr().err
    assert run_cli("sql", "SELECT nope FROM runs", "--root", root) == 2
    assert "nope" in capfd.readouterr().err
    assert run_cli("sql", "SELECT 1", "--root", root, "--as-of", "someday") == 2
    assert "ISO-8601" in capfd.readouterr().err
    assert run_cli("sql", "--root", root) == 2
    assert "give a query" in capfd.readouterr().err
    assert run_cli("sql", "--list-views") == 0
    assert "runs_wide" in capfd.readouterr().out


def test_lineage_command(filled, capfd):
    root, _, ids = filled
    assert run_cli("lineage", ids["a"], "--root", root) == 0
    out = capfd.readouterr().out
    assert "train [training] local" in out and "train.parquet" in out
    assert "'clf'" in out
    assert run_cli("lineage", ids["a"], "--root", root, "--format", "json") == 0
    assert json.loads(capfd.readouterr().out)["inputs"][0]["name"] == "train"
    assert run_cli("lineage", "0" * 32, "--root", root) != 0


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_output_to_file(filled, tmp_path, fmt):
    root, _, _ = filled
    out = tmp_path / f"out.{fmt}"
    assert run_cli("sql", "SELECT 1 AS one", "--root", root, "--format", fmt, "-o", str(out)) == 0
    assert "1" in out.read_text()
