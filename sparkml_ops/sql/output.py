"""Query results for people and pipes: an aligned table, CSV, JSON or Parquet."""

from __future__ import annotations

import json
import math
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

Format = Literal["table", "csv", "json", "parquet"]
FORMATS: tuple[str, ...] = ("table", "csv", "json", "parquet")
_MAX_CELL = 60


def write(table: pa.Table, fmt: Format, out: BinaryIO) -> None:
    """Write ``table`` to the binary stream ``out`` in ``fmt``."""
    if fmt == "parquet":
        pq.write_table(table, out)
    elif fmt == "csv":
        pacsv.write_csv(_flatten(table), out)
    elif fmt == "json":
        out.write(json.dumps([_jsonable_row(r) for r in table.to_pylist()], default=str).encode() + b"\n")
    else:
        out.write(render_table(table).encode() + b"\n")


def render_table(table: pa.Table) -> str:
    """An aligned text table; maps print as {key: value}, long cells are cut."""
    if table.num_columns == 0:
        return "(no columns)"
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    header = table.column_names
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"({table.num_rows} row{'s' if table.num_rows != 1 else ''})")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """Arrow maps arrive as lists of (key, value) pairs: make them dicts, recursively."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "NULL"
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _flatten(table: pa.Table) -> pa.Table:
    """CSV has no nested types: nested columns become JSON text."""
    columns = []
    for column in table.columns:
        if pa.types.is_nested(column.type):
            column = pa.array([None if v is None else json.dumps(_plain(v), default=str)
                               for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)
