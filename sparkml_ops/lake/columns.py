"""Rows of one table as columns: Python lists (one log call) or Arrow arrays (a bulk call).

A record's columns are either all Python lists or all Arrow arrays. Arrow columns let a
bulk call hand millions of rows to the write-ahead log and the commit without ever making
a Python object per row; run-end and dictionary-encoded columns (a run id repeated 10M
times) stay encoded until the commit writes them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sparkml_ops.lake.schemas import TABLES

Columns = dict[str, Any]  # column name -> list of values, or a pyarrow Array / ChunkedArray


def is_arrow(columns: Columns) -> bool:
    """True when the columns are Arrow arrays (a bulk record), False for Python lists."""
    return any(isinstance(v, pa.Array | pa.ChunkedArray) for v in columns.values())


def columns_to_table(table: str, columns: list[Columns]) -> pa.Table:
    """Concatenate column-dicts of one table, in order, into an Arrow table of its schema."""
    schema = TABLES[table].schema
    parts: list[pa.Table] = []
    lists: list[Columns] = []
    for part in columns:
        if is_arrow(part):
            if lists:
                parts.append(_lists_to_table(schema, lists))
                lists = []
            parts.append(arrow_to_table(schema, part))
        else:
            lists.append(part)
    if lists or not parts:
        parts.append(_lists_to_table(schema, lists))
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def arrow_to_table(schema: pa.Schema, columns: Columns) -> pa.Table:
    """Arrow columns as a table of ``schema``: missing columns null, encodings decoded."""
    length = len(next(iter(columns.values())))
    arrays = []
    for field in schema:
        column = columns.get(field.name)
        if column is None:
            arrays.append(pa.nulls(length, field.type))
            continue
        if pa.types.is_run_end_encoded(column.type):
            column = pc.run_end_decode(column)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        arrays.append(column if column.type == field.type else column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _lists_to_table(schema: pa.Schema, columns: list[Columns]) -> pa.Table:
    merged: dict[str, list[Any]] = {name: [] for name in schema.names}
    for part in columns:
        length = len(next(iter(part.values()), []))
        for name in schema.names:
            merged[name].extend(part.get(name) or [None] * length)
    return pa.Table.from_pydict(merged, schema=schema)
