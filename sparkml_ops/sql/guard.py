"""Only read-only queries reach the embedded engine: one SELECT (or WITH … SELECT) statement."""

from __future__ import annotations

import duckdb

from sparkml_ops.errors import BadInput


def check_read_only(sql: object) -> str:
    """Return ``sql`` if it is exactly one SELECT statement; otherwise raise :class:`BadInput`.

    The engine is locked down as well (no file access); this check gives the clear message.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise BadInput(f"query {sql!r} is empty or not text; give one SELECT statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise BadInput(f"SQL syntax error: {one_line(exc)}") from None
    if len(statements) != 1:
        raise BadInput(f"give exactly one SELECT (or WITH ... SELECT) statement; the query has {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise BadInput(f"only read-only SELECT / WITH queries are allowed; this is a {kind.name} statement. "
                       "The tracking tables change only through the tracking API")
    return sql


def one_line(exc: Exception) -> str:
    """An engine's error on one line: DuckDB's span several, which breaks CLI output."""
    return " ".join(str(exc).split())
