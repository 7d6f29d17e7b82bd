"""Data sources a run reads, pinned so they can be read again exactly: a Delta table at a
version, or Parquet/CSV files with a content digest.

A source maps onto MLflow's dataset model (``mlflow.entities.Dataset``) with MLflow's own
source types — ``delta_table`` (path + version, as ``DeltaDatasetSource``) and ``local`` or the
URI scheme (``{"uri": ...}``, as MLflow's file sources) — so the stock client shows it.
What we need beyond that (format, row count, full SHA-256) goes into the dataset profile.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake.exceptions import DeltaError
from mlflow.entities import Dataset

from sparkml_ops.errors import BadInput, InvalidState, NotSupported, StorageError
from sparkml_ops.lake import delta

if TYPE_CHECKING:
    from deltalake import DeltaTable

Kind = Literal["delta", "parquet", "csv"]
FILE_FORMATS: dict[str, Kind] = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv"}
DELTA_SOURCE_TYPE = "delta_table"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataSource:
    kind: Kind
    location: str  # Delta table root, file or directory: an absolute path or a URI
    digest: str  # 32 hex chars: MLflow's dataset digest (its limit is 36)
    version: int | None = None  # Delta only
    sha256: str | None = None  # files only: the full content digest
    num_rows: int | None = None
    size_bytes: int | None = None
    files: int | None = None
    schema: pa.Schema | None = None

    @property
    def default_name(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1] or self.location


# ----------------------------------------------------------------------------- resolving


def from_path(path: str | os.PathLike[str], *, version: int | None = None, format: Kind | None = None,
              storage_options: dict[str, str] | None = None) -> DataSource:
    """A Delta table (at ``version``, default current) or a Parquet/CSV file or directory."""
    location = _normalise(os.fspath(path))
    if format not in (None, "delta", "parquet", "csv"):
        raise BadInput(f"format={format!r} is not supported; use 'delta', 'parquet' or 'csv'")
    if format in (None, "delta") and _is_delta(location, storage_options):
        return from_delta(location, version=version, storage_options=storage_options)
    if format == "delta":
        raise BadInput(f"{location} is not a Delta table (no _delta_log)")
    if version is not None:
        raise BadInput(f"version={version} applies to Delta tables only; {location} is not one")
    return from_files(location, format)


def from_delta(location: str, *, version: int | None = None,
               storage_options: dict[str, str] | None = None) -> DataSource:
    dt = open_delta(location, version, storage_options)
    actions = pa.table(dt.get_add_actions(flatten=True))
    return DataSource(
        kind="delta", location=location, digest=delta_digest(dt), version=dt.version(),
        num_rows=int(sum(n or 0 for n in actions.column("num_records").to_pylist())),
        size_bytes=int(sum(actions.column("size_bytes").to_pylist())), files=actions.num_rows,
        schema=pa.schema(dt.schema()),
    )


def from_files(location: str, format: Kind | None = None) -> DataSource:
    fs, path = _filesystem(location)
    files = data_files(fs, path, location)
    kind = format or _format_of(files, location)
    sha, size = content_sha256(fs, files)
    num_rows, schema = None, None
    if kind == "parquet":
        try:
            metas = [pq.ParquetFile(fs.open_input_file(f)).metadata for f in files]
            num_rows = sum(m.num_rows for m in metas)
            schema = metas[0].schema.to_arrow_schema() if metas else None
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadInput(f"{location} is not readable as Parquet: {exc}") from exc
    return DataSource(kind=kind, location=location, digest=sha[:32], sha256=sha, num_rows=num_rows,
                      size_bytes=size, files=len(files), schema=schema)


def from_spark(df: Any, *, version: int | None = None) -> DataSource:
    """The table or files a Spark DataFrame reads (``df.inputFiles()``), not its transformations.

    A DataFrame over a Delta table (read with ``format("delta")`` or as the snapshot's Parquet
    files) gives that table at the version whose file set it reads; otherwise one file or one
    whole directory of Parquet/CSV files (the directory when the DataFrame reads all its data files).
    """
    files = sorted({_normalise(f) for f in df.inputFiles()})
    if not files:
        raise BadInput("the DataFrame reads no files (built in memory or from a catalog table without files); "
                       "log the path or table it came from instead")
    root = _delta_root(files[0])
    if root is not None and all(f.startswith(root.rstrip("/") + "/") for f in files):
        return from_delta(root, version=version if version is not None else _version_reading(root, set(files)))
    if version is not None:
        raise BadInput("version= applies to Delta tables only; the DataFrame reads plain files")
    parent = os.path.dirname(files[0])
    fs, path = _filesystem(parent)
    if set(data_files(fs, path, parent)) == {_filesystem(f)[1] for f in files}:
        return from_files(parent)  # the whole directory, as Spark jobs write and read data
    if len(files) == 1:
        return from_files(files[0])
    raise BadInput(f"the DataFrame reads {len(files)} files that are neither one file nor one whole directory "
                   f"(first: {files[0]}); log the path it came from instead")


def open_delta(location: str, version: int | None, storage_options: dict[str, str] | None = None) -> DeltaTable:
    try:
        dt = delta.open_table(location, version=version, storage_options=storage_options)
    except DeltaError as exc:
        at = f" at version {version}" if version is not None else ""
        raise StorageError(f"Delta table {location} cannot be read{at}: {exc} (vacuumed, or log cleaned up?)") from exc
    if dt is None:
        raise StorageError(f"Delta table {location} no longer exists")
    return dt


def delta_digest(dt: DeltaTable) -> str:
    """Identity of one snapshot: the table's id, its version and its data files."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    h = hashlib.sha256(f"{dt.metadata().id}\n{dt.version()}\n".encode())
    paths, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
    for path, size in sorted(zip(paths, sizes, strict=True)):
        h.update(f"{path}\t{size}\n".encode())
    return h.hexdigest()[:32]


def data_files(fs: pafs.FileSystem, path: str, shown: str) -> list[str]:
    """The data files of a file or directory (names starting with '_' or '.' are metadata)."""
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [path]
    if info.type != pafs.FileType.Directory:
        raise BadInput(f"no file, directory or Delta table at {shown}")
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        relative = entry.path[len(path.rstrip("/")) + 1:]
        if entry.type == pafs.FileType.File and not any(p.startswith(("_", ".")) for p in relative.split("/")):
            found.append(entry.path)
    if not found:
        raise BadInput(f"directory {shown} holds no data files")
    return sorted(found)


def content_sha256(fs: pafs.FileSystem, files: list[str]) -> tuple[str, int]:
    """SHA-256 of the files' bytes (with their relative names, for directories) and total size."""
    if len(files) == 1:
        sha, size = _file_sha256(fs, files[0])
        return sha, size
    base = os.path.commonpath(files)
    outer, total = hashlib.sha256(), 0
    for f in files:
        sha, size = _file_sha256(fs, f)
        outer.update(f"{os.path.relpath(f, base)}\t{sha}\n".encode())
        total += size
    return outer.hexdigest(), total


def _file_sha256(fs: pafs.FileSystem, path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with fs.open_input_stream(path) as stream:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# ----------------------------------------------------------------------------- MLflow's model


def to_mlflow(source: DataSource, name: str) -> Dataset:
    if source.kind == "delta":
        # DeltaDatasetSource's own JSON layout, written here: its to_dict() drops version 0.
        source_type = DELTA_SOURCE_TYPE
        source_json = json.dumps({"path": source.location, "delta_table_version": source.version})
    else:
        scheme = urlparse(source.location).scheme if "://" in source.location else ""
        source_type = scheme if scheme and scheme != "file" else "local"
        source_json = json.dumps({"uri": source.location})
    profile: dict[str, Any] = {"format": source.kind, "num_rows": source.num_rows, "files": source.files,
               "size_bytes": source.size_bytes}
    if source.kind == "delta":
        profile["delta_version"] = source.version
    else:
        profile["sha256"] = source.sha256
    return Dataset(name=name, digest=source.digest, source_type=source_type, source=source_json,
                   schema=_mlflow_schema(source.schema), profile=json.dumps(profile))


def from_mlflow(dataset: Dataset) -> DataSource:
    """The pinned source recorded in a logged dataset (ours, or any MLflow delta/file source)."""
    try:
        source = json.loads(dataset.source or "{}")
        profile = json.loads(dataset.profile or "{}")
    except ValueError as exc:
        raise BadInput(f"dataset {dataset.name!r} has an unreadable source or profile: {exc}") from exc
    if dataset.source_type == DELTA_SOURCE_TYPE and source.get("path"):
        version = source.get("delta_table_version", profile.get("delta_version"))
        if version is None:
            raise NotSupported(f"dataset {dataset.name!r} names Delta table {source['path']} without a version; "
                               "its data cannot be pinned")
        return DataSource(kind="delta", location=source["path"], digest=dataset.digest, version=int(version))
    if "uri" in source and (profile.get("sha256") or profile.get("format")):
        location = _normalise(source["uri"])
        kind = profile.get("format") or _format_of([location], location)
        return DataSource(kind=kind, location=location, digest=dataset.digest, sha256=profile.get("sha256"))
    raise NotSupported(f"dataset {dataset.name!r} has source type {dataset.source_type!r} with source "
                       f"{dataset.source!r}; load_input reads Delta tables and files logged by "
                       "sparkml_ops.lineage.log_input")


# ----------------------------------------------------------------------------- reading back


def load(source: DataSource, spark: Any = None, *, storage_options: dict[str, str] | None = None):
    """Exactly the data the source pinned: an Arrow table, or a Spark DataFrame given ``spark``."""
    if source.kind == "delta":
        return _load_delta(source, spark, storage_options)
    fs, path = _filesystem(source.location)
    files = data_files(fs, path, source.location)
    sha, _ = content_sha256(fs, files)
    if (sha != source.sha256) if source.sha256 else (sha[:32] != source.digest):
        raise InvalidState(f"{source.location} changed since it was logged: its content digest was "
                           f"{source.sha256 or source.digest}, now {sha}. The data the run read is gone; "
                           "restore it, or log the new data as a new input")
    if spark is not None:
        from sparkml_ops.sql.spark import spark_path

        reader = spark.read
        if source.kind == "csv":
            return reader.option("header", True).option("inferSchema", True).csv(spark_path(source.location))
        return reader.parquet(spark_path(source.location))
    import pyarrow.dataset as ds

    fmt = "csv" if source.kind == "csv" else "parquet"
    return ds.dataset(path, format=fmt, filesystem=fs).to_table()


def _load_delta(source: DataSource, spark: Any, storage_options: dict[str, str] | None):
    dt = open_delta(source.location, source.version, storage_options)
    if delta_digest(dt) != source.digest:
        raise InvalidState(f"the Delta table at {source.location} is not the one that was logged: version "
                           f"{source.version} now has other data files (was the table re-created?)")
    if spark is not None:
        from sparkml_ops.sql.spark import delta_configured, spark_path

        if delta_configured(spark):
            return spark.read.format("delta").option("versionAsOf", source.version).load(spark_path(source.location))
        files = dt.file_uris()
        if not files:
            from sparkml_ops.sql.spark import spark_schema

            return spark.createDataFrame([], spark_schema(pa.schema(dt.schema())))
        return (spark.read.option("basePath", spark_path(source.location))
                .parquet(*[spark_path(f) for f in files]))
    try:
        return dt.to_pyarrow_table()
    except (OSError, DeltaError) as exc:
        raise StorageError(f"version {source.version} of Delta table {source.location} cannot be read: {exc} "
                           "(its files may have been removed by vacuum)") from exc


# ----------------------------------------------------------------------------- helpers


def _normalise(location: str) -> str:
    if location.startswith("file:"):
        return os.path.abspath(unquote(urlparse(location).path))
    if "://" in location:
        return location.rstrip("/")
    return os.path.abspath(os.path.expanduser(location))


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in location:
        return pafs.LocalFileSystem(), location
    try:
        return pafs.FileSystem.from_uri(location)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadInput(f"cannot open {location}: {exc}") from exc


def _is_delta(location: str, storage_options: dict[str, str] | None) -> bool:
    if "://" not in location:
        return os.path.isdir(os.path.join(location, "_delta_log"))
    return delta.is_table(location, storage_options)


def _delta_root(file: str) -> str | None:
    """The Delta table a data file belongs to (its directory or an ancestor, for partitions)."""
    current = os.path.dirname(file)
    for _ in range(8):
        if _is_delta(current, None):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return None


def _version_reading(root: str, files: set[str], max_versions: int = 200) -> int:
    """The version whose data files are exactly ``files`` (newest first); else the newest that has them all."""
    dt = open_delta(root, None)
    latest, superset = dt.version(), None
    for version in range(latest, max(-1, latest - max_versions), -1):
        dt.load_as_version(version)
        current = {_normalise(f) for f in dt.file_uris()}
        if current == files:
            return version
        if superset is None and files <= current:
            superset = version
    if superset is not None:
        return superset
    raise BadInput(f"the DataFrame reads files of Delta table {root} that no recent version holds together; "
                   "pass version= to log_input")


def _format_of(files: list[str], shown: str) -> Kind:
    kinds: set[Kind | None] = set()
    for f in files:
        name = f.lower()
        name = name[:-3] if name.endswith(".gz") else name
        kinds.add(next((k for ext, k in FILE_FORMATS.items() if name.endswith(ext)), None))
    if len(kinds) != 1 or None in kinds:
        raise BadInput(f"cannot tell the format of {shown} from its file names; pass format='parquet' or 'csv'")
    (kind,) = kinds
    assert kind is not None
    return kind


def _mlflow_schema(schema: pa.Schema | None) -> str | None:
    """The schema as MLflow's column spec JSON (columns of types MLflow has no name for are left out)."""
    if schema is None:
        return None
    names = {pa.types.is_string: "string", pa.types.is_large_string: "string", pa.types.is_boolean: "boolean",
             pa.types.is_int64: "long", pa.types.is_int32: "integer", pa.types.is_int16: "integer",
             pa.types.is_int8: "integer", pa.types.is_float64: "double", pa.types.is_float32: "float",
             pa.types.is_binary: "binary", pa.types.is_timestamp: "datetime", pa.types.is_date: "datetime"}
    cols = []
    for field in schema:
        kind = next((n for test, n in names.items() if test(field.type)), None)
        if kind is not None:
            cols.append({"type": kind, "name": field.name, "required": not field.nullable})
    return json.dumps({"mlflow_colspec": cols})
