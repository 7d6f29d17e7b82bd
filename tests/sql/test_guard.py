"""Queries are read-only and errors are clear: nothing a query says can write or delete."""

from __future__ import annotations

import os

import pytest

from sparkml_ops import sql
from sparkml_ops.errors import BadInput


def _state(root: str) -> tuple[dict[str, int], int, set[str]]:
    files = set()
    for base, _, names in os.walk(root):
        files.update(os.path.join(base, n) for n in names)
    runs = sql.query("SELECT count(*) AS n FROM runs", root).column("n")[0].as_py()
    return sql.snapshot_versions(root), runs, files


@pytest.mark.parametrize("statement", [
    "DELETE FROM runs",
    "DROP VIEW runs",
    "INSERT INTO sparkml_state_runs SELECT * FROM sparkml_state_runs",
    "UPDATE sparkml_state_runs SET status = 'KILLED'",
    "CREATE TABLE x AS SELECT * FROM runs",
    "COPY (SELECT * FROM runs) TO '{root}/stolen.csv'",
    "EXPORT DATABASE '{root}/export'",
    "ATTACH '{root}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "SELECT 1; DELETE FROM runs",
    "EXPLAIN SELECT * FROM runs",
])
def test_only_single_selects_are_accepted(filled, statement):
    root, _, _ = filled
    before = _state(root)
    with pytest.raises(BadInput, match="SELECT"):
        sql.query(statement.format(root=root), root)
    assert _state(root) == before


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('{root}/tables/runs/*.parquet')",
    "SELECT * FROM '{root}/tables/runs/_delta_log/00000000000000000000.json'",
    "SELECT * FROM glob('{root}/*')",
])
def test_selects_cannot_touch_files(filled, statement):
    root, _, _ = filled
    before = _state(root)
    with pytest.raises(BadInput, match="read or write files|SQL error"):
        sql.query(statement.format(root=root), root)
    assert _state(root) == before


def test_sql_errors_are_clear(filled):
    root, _, _ = filled
    with pytest.raises(BadInput, match=r"SQL error: .*no_such_column.*views: experiments"):
        sql.query("SELECT no_such_column FROM runs", root)
    with pytest.raises(BadInput, match=r"SQL error: .*no_such_view"):
        sql.query("SELECT * FROM no_such_view", root)
    with pytest.raises(BadInput, match="SQL syntax error"):
        sql.query("SELEC run_id FROM runs", root)
    with pytest.raises(BadInput, match="the query failed"):
        sql.query("SELECT CAST(run_name AS INTEGER) FROM runs", root)
