"""Decode ``/invocations`` bodies: media types, JSON and tables, straight to a numpy matrix.

The fast path never builds a pandas DataFrame: JSON rows are type-checked against the
:class:`MatrixSpec` value by value (cheap for the 1-row requests that dominate online
scoring) and handed to numpy; CSV, Parquet and Arrow bodies become an Arrow table whose
columns are checked by type. Every failure is a :class:`PayloadError` naming the field,
row and column.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Sequence

import numpy as np
import orjson

from sparkml_ops.models.serving.http_errors import PayloadError, UnsupportedMediaType
from sparkml_ops.models.spec import MatrixSpec

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MEDIA_TYPES = {
    "application/json": "json",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow_stream",
    "application/vnd.apache.arrow.file": "arrow_file",
}
_REQUIRED = f"the body must be a JSON object with exactly one of the fields {list(FORMATS)} (and optionally 'params')"
_kind_cache: dict[str, str] = {}
_perm_cache: dict[tuple, tuple[int, ...] | None] = {}
_MISSING: tuple[int, ...] = (-1,)  # a sentinel no cached permutation equals (identity-compared)


def content_kind(header: str | None) -> str:
    """``json``, ``csv``, ``parquet``, ``arrow_stream`` or ``arrow_file`` for a Content-Type header."""
    if header is not None and header in _kind_cache:
        return _kind_cache[header]
    if not header:
        raise UnsupportedMediaType(f"missing Content-Type header; send one of {sorted(MEDIA_TYPES)}")
    mime, _, rest = header.partition(";")
    kind = MEDIA_TYPES.get(mime.strip().lower())
    if kind is None:
        raise UnsupportedMediaType(f"Content-Type {mime.strip()!r} is not supported; send one of {sorted(MEDIA_TYPES)}")
    for part in rest.split(";"):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key == "charset":
            if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise UnsupportedMediaType(f"charset {value.strip()!r} is not supported; the server reads only UTF-8")
        elif key:
            raise UnsupportedMediaType(f"Content-Type parameter {key!r} is not recognised; only 'charset' is")
    if len(_kind_cache) < 256:
        _kind_cache[header] = kind
    return kind


def decode_json(body: bytes):
    """Parse JSON with orjson, falling back to the stdlib for NaN/Infinity (which MLflow's client emits)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"the body is not valid JSON: {exc}") from None


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, float):
        return f"number {value!r}, not an integer"
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return f"{type(value).__name__} {value!r}"


def _type_error(fs: MatrixSpec, j: int, where: str, value) -> PayloadError:
    return PayloadError(f"{where}: {fs.label(j)} got {_describe(value)}")


def _to_array(rows, fs: MatrixSpec, field: str) -> np.ndarray:
    try:
        return np.array(rows, dtype=fs.dtype)
    except (OverflowError, ValueError) as exc:
        raise PayloadError(f"{field}: a value does not fit the model's {fs.dtype} input: {exc}") from None


def _check_row(row, fs: MatrixSpec, field: str, r: int) -> None:
    uniform = fs.uniform
    if uniform is not None and uniform.issuperset(map(type, row)):  # one C-level pass for the common case
        limit = fs.int_limits[0] if row else None
        if limit is None or -limit <= min(row) and max(row) < limit:
            return
    kinds, limits = fs.kinds, fs.int_limits
    for j, value in enumerate(row):
        if type(value) not in kinds[j]:
            raise _type_error(fs, j, f"{field} row {r}", value)
        bound = limits[j]
        if bound is not None and not -bound <= value < bound:
            raise PayloadError(f"{field} row {r}: {fs.label(j)} value {value} is out of range")


def _rows_to_matrix(rows, fs: MatrixSpec, field: str, perm: tuple[int, ...] | None, n_src: int) -> np.ndarray:
    """Rows given as lists: ``perm[j]`` is where model input ``j`` sits in a row of ``n_src`` values."""
    if type(rows) is not list:
        raise PayloadError(f"{field} must be a list of rows, got {_describe(rows)}")
    if perm is not None:
        picked = []
        for r, row in enumerate(rows):
            if type(row) is not list or len(row) != n_src:
                raise PayloadError(f"{field} row {r} must be a list of {n_src} values (one per column), "
                                   f"got {_describe(row) if type(row) is not list else f'{len(row)} values'}")
            picked.append([row[p] for p in perm])
        rows = picked
    width = fs.width
    for r, row in enumerate(rows):
        if type(row) is not list or len(row) != width:
            got = f"{len(row)} values" if type(row) is list else _describe(row)
            raise PayloadError(f"{field} row {r} must be a list of {width} values, got {got}")
        _check_row(row, fs, field, r)
    return _to_array(rows, fs, field)


def _permutation(columns, fs: MatrixSpec, field: str) -> tuple[int, ...] | None:
    """Positions of the model's inputs within ``columns`` (``None`` when they already match)."""
    if type(columns) is not list:
        raise PayloadError(f"{field} must be a list of column names")
    try:
        key = (fs.names, tuple(columns))
        cached = _perm_cache.get(key, _MISSING)
    except TypeError:  # unhashable entries: not names
        cached = _MISSING
    if cached is not _MISSING:
        return cached
    if not all(type(c) is str for c in columns):
        raise PayloadError(f"{field} must be a list of column names")
    if fs.names is None:
        if len(columns) != fs.width:
            raise PayloadError(f"{field} names {len(columns)} columns; the model takes a tensor of {fs.width}")
        return None  # a tensor takes columns by position
    position = {}
    for i, name in enumerate(columns):
        if name in position:
            raise PayloadError(f"{field} repeats column {name!r}")
        position[name] = i
    _require(fs, fs.names, position, field)
    perm = tuple(position[n] for n in fs.names)
    result = None if perm == tuple(range(len(columns))) else perm
    if len(_perm_cache) < 256:
        _perm_cache[key] = result
    return result


def _require(fs: MatrixSpec, names: Sequence[str], given: Collection[str], where: str) -> None:
    """Raise naming the model inputs missing from ``given`` (and the columns it has that are not inputs)."""
    missing = [n for n in names if n not in given]
    if missing:
        extra = [c for c in given if c not in fs.index]
        hint = f"; unexpected column(s) {extra}" if extra else ""
        raise PayloadError(f"{where} is missing column(s) {missing} required by the model signature{hint}")


def _records_to_matrix(records, fs: MatrixSpec, field: str) -> np.ndarray:
    if type(records) is not list:
        raise PayloadError(f"{field} must be a list of objects (one per row), got {_describe(records)}")
    if fs.names is None:
        raise PayloadError(f"{field}: the model takes a tensor of {fs.width} values per row; send rows as lists")
    names, rows = fs.names, []
    for r, record in enumerate(records):
        if type(record) is not dict:
            raise PayloadError(f"{field} row {r} must be an object mapping column to value, got {_describe(record)}")
        try:
            row = [record[n] for n in names]
        except KeyError:
            _require(fs, names, record, f"{field} row {r}")
        _check_row(row, fs, field, r)
        rows.append(row)
    return _to_array(rows, fs, field)


def _columns_to_matrix(mapping: dict, fs: MatrixSpec, field: str) -> np.ndarray:
    if fs.names is None:
        raise PayloadError(f"{field}: the model takes a tensor of {fs.width} values per row; send a list of rows")
    _require(fs, fs.names, mapping, field)
    columns = [mapping[n] for n in fs.names]
    if not any(type(c) is list for c in columns):
        row = columns
        _check_row(row, fs, field, 0)
        return _to_array([row], fs, field)
    n: int | None = None
    for j, col in enumerate(columns):
        if type(col) is not list:
            raise PayloadError(f"{field}: {fs.label(j)} must be a list like the other columns, got {_describe(col)}")
        if n is None:
            n = len(col)
        elif len(col) != n:
            raise PayloadError(f"{field}: {fs.label(j)} has {len(col)} values but the first column has {n}")
        kinds, limit = fs.kinds[j], fs.int_limits[j]
        if kinds.issuperset(map(type, col)) and (limit is None or not col or -limit <= min(col) and max(col) < limit):
            continue
        for r, value in enumerate(col):
            if type(value) not in kinds:
                raise _type_error(fs, j, f"{field} row {r}", value)
            if limit is not None and not -limit <= value < limit:
                raise PayloadError(f"{field} row {r}: {fs.label(j)} value {value} is out of range")
    matrix = np.empty((n or 0, fs.width), dtype=fs.dtype)
    try:
        for j, col in enumerate(columns):
            matrix[:, j] = col
    except (OverflowError, ValueError) as exc:
        raise PayloadError(f"{field}: a value does not fit the model's {fs.dtype} input: {exc}") from None
    return matrix


def json_to_matrix(obj, fs: MatrixSpec) -> tuple[np.ndarray, dict | None]:
    """The model input matrix and ``params`` of a decoded JSON request (MLflow's four formats)."""
    if type(obj) is not dict:
        raise PayloadError(f"{_REQUIRED}; got {_describe(obj)}")
    fmt, params, unknown = None, None, []
    for key in obj:
        if key in FORMATS:
            if fmt is not None:
                raise PayloadError(f"{_REQUIRED}; got both {fmt!r} and {key!r}")
            fmt = key
        elif key == "params":
            params = obj[key]
            if params is not None and type(params) is not dict:
                raise PayloadError(f"field 'params' must be an object, got {_describe(params)}")
        else:
            unknown.append(key)
    if unknown:
        raise PayloadError(f"unknown field(s) {unknown}; {_REQUIRED}")
    if fmt is None:
        raise PayloadError(f"{_REQUIRED}; got none")
    value = obj[fmt]
    if fmt == "dataframe_split":
        if type(value) is not dict:
            raise PayloadError(f"dataframe_split must be an object with 'columns' and 'data', got {_describe(value)}")
        bad = [k for k in value if k not in ("columns", "data", "index")]
        if bad:
            raise PayloadError(f"dataframe_split has unknown key(s) {bad}; expected 'columns', 'data' and 'index'")
        if "data" not in value:
            raise PayloadError("dataframe_split has no 'data'")
        columns = value.get("columns")
        if columns is None:
            return _rows_to_matrix(value["data"], fs, "dataframe_split.data", fs.positional, fs.width), params
        perm = _permutation(columns, fs, "dataframe_split.columns")
        return _rows_to_matrix(value["data"], fs, "dataframe_split.data", perm, len(columns)), params
    if fmt == "dataframe_records":
        return _records_to_matrix(value, fs, fmt), params
    if type(value) is dict:
        return _columns_to_matrix(value, fs, fmt), params
    if type(value) is not list:
        raise PayloadError(f"{fmt} must be a list of rows or an object of columns, got {_describe(value)}")
    if value and type(value[0]) is dict:
        return _records_to_matrix(value, fs, fmt), params
    if fs.width == 1 and value and type(value[0]) is not list:
        value = [[v] for v in value]
    return _rows_to_matrix(value, fs, fmt, fs.positional, fs.width), params


def read_table(kind: str, body: bytes):
    """A ``pyarrow.Table`` from a CSV, Parquet or Arrow IPC body."""
    import pyarrow as pa

    try:
        if kind == "csv":
            from pyarrow import csv

            return csv.read_csv(io.BytesIO(body))
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(body))
        if kind == "arrow_stream":
            return pa.ipc.open_stream(body).read_all()
        if kind == "arrow_file":
            return pa.ipc.open_file(pa.BufferReader(body)).read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        names = {"csv": "CSV", "parquet": "Parquet", "arrow_stream": "an Arrow IPC stream",
                 "arrow_file": "an Arrow IPC file"}
        raise PayloadError(f"the body is not valid {names[kind]}: {exc}") from None
    raise PayloadError(f"cannot read a table from a {kind} body")


def table_to_matrix(table, fs: MatrixSpec, kind: str) -> np.ndarray:
    """The model input matrix of an Arrow table: its columns checked by type and for nulls, then
    converted as the Spark workers convert theirs (:func:`sparkml_ops.models.arrow_io.to_matrix`)."""
    import pyarrow as pa

    from sparkml_ops.models.arrow_io import to_matrix

    if fs.names is None:
        if table.num_columns != fs.width:
            raise PayloadError(f"{kind} body has {table.num_columns} columns; the model takes a tensor of {fs.width}")
        columns = table.columns
    else:
        _require(fs, fs.names, table.column_names, f"{kind} body")
        columns = [table.column(n) for n in fs.names]
    for j, col in enumerate(columns):
        typ = col.type
        if not (pa.types.is_integer(typ) or (float in fs.kinds[j] and pa.types.is_floating(typ))):
            raise PayloadError(f"{kind} body: {fs.label(j)} has Arrow type {typ}")
        if col.null_count:
            raise PayloadError(f"{kind} body: {fs.label(j)} has {col.null_count} null value(s)")
    return to_matrix(columns, fs.dtype)
