"""Schemas of the Delta tables under a root.

Every table is append-only: a change is a new row, and the row with the highest ``seq``
(a per-writer monotonic nanosecond stamp) for a key is the current state. Appends never
conflict between writers, time travel shows every past state, and plain Parquet readers
read the tables exactly (no deletion vectors, no column mapping).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

LAYOUT_VERSION = 2  # 2: every table carries LAYOUT_PROPERTY (1: only the local marker file said so)
LAYOUT_PROPERTY = "sparkml_ops.layoutVersion"  # Delta table property holding the layout version

_str = pa.string()
_i64 = pa.int64()


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]  # identity of one logical row; latest ``seq`` wins
    doc: str
    # "The current row per key", defined once for the Arrow state and both engines' SQL views:
    # the row with the highest ``state_order`` per ``state_key`` (``key`` unless a table says otherwise).
    latest_key: tuple[str, ...] = ()
    state_order: tuple[str, ...] = ("seq",)

    @property
    def state_key(self) -> tuple[str, ...]:
        return self.latest_key or self.key

    @property
    def description(self) -> str:
        return f"sparkml_ops layout {LAYOUT_VERSION}: {self.doc}"


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype) for name, dtype in fields])


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "experiments",
            _schema(("experiment_id", _str), ("name", _str), ("artifact_location", _str),
                    ("lifecycle_stage", _str), ("creation_time", _i64),
                    ("last_update_time", _i64), ("seq", _i64)),
            ("experiment_id",),
            "one row per experiment state change",
        ),
        TableSpec(
            "experiment_tags",
            _schema(("experiment_id", _str), ("key", _str), ("value", _str),
                    ("deleted", pa.bool_()), ("seq", _i64)),
            ("experiment_id", "key"),
            "experiment tag sets and deletions",
        ),
        TableSpec(
            "runs",
            _schema(("run_id", _str), ("experiment_id", _str), ("run_name", _str),
                    ("user_id", _str), ("status", _str), ("start_time", _i64),
                    ("end_time", _i64), ("lifecycle_stage", _str), ("artifact_uri", _str),
                    ("deleted_time", _i64), ("seq", _i64)),
            ("run_id",),
            "one row per run state change",
        ),
        TableSpec(
            "params",
            _schema(("run_id", _str), ("key", _str), ("value", _str), ("seq", _i64)),
            ("run_id", "key"),
            "run parameters (immutable)",
        ),
        TableSpec(
            "tags",
            _schema(("run_id", _str), ("key", _str), ("value", _str),
                    ("deleted", pa.bool_()), ("seq", _i64)),
            ("run_id", "key"),
            "run tag sets and deletions",
        ),
        TableSpec(
            "metrics",
            _schema(("run_id", _str), ("key", _str), ("value", pa.float64()),
                    ("timestamp", _i64), ("step", _i64), ("model_id", _str),
                    ("dataset_name", _str), ("dataset_digest", _str), ("seq", _i64)),
            (),
            "every logged metric point (full history)",
            latest_key=("run_id", "key"),  # MLflow's "latest metric": highest step, then timestamp, then value
            state_order=("step", "timestamp", "value"),
        ),
        TableSpec(
            "inputs",
            _schema(("run_id", _str), ("kind", _str), ("name", _str), ("digest", _str),
                    ("source_type", _str), ("source", _str), ("schema", _str),
                    ("profile", _str), ("tags", _str), ("context", _str), ("model_id", _str),
                    ("seq", _i64)),
            ("run_id", "kind", "name", "digest", "model_id"),
            "datasets and models a run read (kind 'dataset' or 'model')",
        ),
        TableSpec(
            "outputs",
            _schema(("run_id", _str), ("model_id", _str), ("step", _i64), ("seq", _i64)),
            ("run_id", "model_id"),
            "logged models a run produced",
        ),
        TableSpec(
            "logged_models",
            _schema(("model_id", _str), ("experiment_id", _str), ("name", _str),
                    ("artifact_location", _str), ("creation_timestamp", _i64),
                    ("last_updated_timestamp", _i64), ("model_type", _str),
                    ("source_run_id", _str), ("status", _str), ("status_message", _str),
                    ("lifecycle_stage", _str), ("seq", _i64)),
            ("model_id",),
            "one row per logged-model state change",
        ),
        TableSpec(
            "logged_model_tags",
            _schema(("model_id", _str), ("key", _str), ("value", _str),
                    ("deleted", pa.bool_()), ("seq", _i64)),
            ("model_id", "key"),
            "logged-model tag sets and deletions",
        ),
        TableSpec(
            "logged_model_params",
            _schema(("model_id", _str), ("key", _str), ("value", _str), ("seq", _i64)),
            ("model_id", "key"),
            "logged-model parameters",
        ),
        TableSpec(
            "registry",
            _schema(("kind", _str), ("model_key", _str), ("name", _str), ("version", _i64),
                    ("key", _str), ("value", _str), ("description", _str),
                    ("creation_time", _i64), ("last_updated_time", _i64), ("user_id", _str),
                    ("current_stage", _str), ("source", _str), ("storage_location", _str),
                    ("run_id", _str), ("run_link", _str), ("status", _str),
                    ("status_message", _str), ("model_id", _str), ("target_version", _i64),
                    ("deleted", pa.bool_()), ("seq", _i64)),
            ("kind", "model_key", "version", "key"),
            "model registry: registered models, versions, tags and aliases (kind says which; an alias "
            "row's key is the alias, target_version where it points); seq is the Delta version of the "
            "commit that wrote the row",
        ),
    )
}

# Tables written one serialized, synchronous commit at a time (never by the group-commit writer).
SERIAL_TABLES = frozenset({"registry"})
