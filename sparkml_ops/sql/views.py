"""The tracking views, defined once as SQL and rendered for Spark SQL or the embedded engine.

Three layers, the same in both engines:

* raw tables ``sparkml_raw_<table>``: every appended row of a Delta table;
* state ``sparkml_state_<table>``: the current row per key — the highest ``seq``, or for
  metrics the highest ``(step, timestamp, value)`` as MLflow defines "latest" — tombstones kept
  (materialised tables in the embedded engine, subqueries of the public views in Spark);
* public views (:data:`VIEW_NAMES`): what users query, tombstones dropped, ``seq`` hidden.

Only the struct constructor and identifier quoting differ between the engines, so a view
means the same thing in both. The latest row is one ``max(struct(order..., rest...))``
aggregate: a hash aggregate in either engine, several times faster than a window function.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkml_ops.lake.schemas import TABLES

RAW_PREFIX = "sparkml_raw_"
STATE_PREFIX = "sparkml_state_"

@dataclass(frozen=True)
class Dialect:
    name: str
    struct_fn: str
    quote_char: str

    def q(self, name: str) -> str:
        return f"{self.quote_char}{name}{self.quote_char}"

    def cols(self, names: tuple[str, ...] | list[str], prefix: str = "") -> str:
        return ", ".join(prefix + self.q(n) for n in names)

    def struct(self, names: tuple[str, ...] | list[str]) -> str:
        return f"{self.struct_fn}({self.cols(names)})"


SPARK = Dialect("spark", "struct", "`")
DUCKDB = Dialect("duckdb", "struct_pack", '"')


def state_sql(table: str, d: Dialect, source: str | None = None) -> str:
    """The current row per key of ``table``, all columns in schema order (tombstones kept).

    ``source`` replaces the raw table (the embedded engine merges new rows into a state this way).
    """
    names = TABLES[table].schema.names
    key, order = TABLES[table].state_key, TABLES[table].state_order
    fields = [*order, *(c for c in names if c not in key and c not in order)]
    picks = ", ".join(d.q(c) if c in key else f"s.{d.q(c)} AS {d.q(c)}" for c in names)
    keys = d.cols(key)
    return (f"SELECT {picks} FROM (SELECT {keys}, max({d.struct(fields)}) AS s "
            f"FROM {source or RAW_PREFIX + table} GROUP BY {keys}) AS latest")


def _visible(table: str, drop: tuple[str, ...] = ("seq", "deleted")) -> list[str]:
    return [c for c in TABLES[table].schema.names if c not in drop]


def _select(d: Dialect, source: str, table: str, live_only: bool = False) -> str:
    where = " WHERE NOT coalesce(deleted, false)" if live_only else ""
    return f"SELECT {d.cols(_visible(table))} FROM {source}{where}"


def _map_of(d: Dialect, view: str, id_col: str, alias: str, where: str) -> str:
    return (f"SELECT {d.q(id_col)}, map_from_entries(array_agg({d.struct(['key', 'value'])})) AS {d.q(alias)} "
            f"FROM {view}{where} GROUP BY {d.q(id_col)}")


def runs_wide_sql(d: Dialect, only_runs: str | None = None) -> str:
    """``runs_wide``; ``only_runs`` (a one-column subquery of run ids) limits it to those runs."""
    where = f" WHERE {d.q('run_id')} IN ({only_runs})" if only_runs else ""
    run_cols = ["run_id", "experiment_id"]
    more = ["run_name", "user_id", "status", "start_time", "end_time", "lifecycle_stage", "artifact_uri"]
    return (
        f"SELECT {d.cols(run_cols, 'r.')}, e.{d.q('name')} AS {d.q('experiment_name')}, {d.cols(more, 'r.')}, "
        f"p.{d.q('params')}, m.{d.q('metrics')}, t.{d.q('tags')} "
        f"FROM (SELECT * FROM runs{where}) AS r "
        f"LEFT JOIN experiments AS e ON e.{d.q('experiment_id')} = r.{d.q('experiment_id')} "
        f"LEFT JOIN ({_map_of(d, 'params', 'run_id', 'params', where)}) AS p "
        f"ON p.{d.q('run_id')} = r.{d.q('run_id')} "
        f"LEFT JOIN ({_map_of(d, 'latest_metrics', 'run_id', 'metrics', where)}) AS m "
        f"ON m.{d.q('run_id')} = r.{d.q('run_id')} "
        f"LEFT JOIN ({_map_of(d, 'tags', 'run_id', 'tags', where)}) AS t ON t.{d.q('run_id')} = r.{d.q('run_id')}"
    )


def public_views(d: Dialect, *, inline_state: bool = False) -> dict[str, str]:
    """View name -> SQL, in dependency order (``runs_wide`` last).

    With ``inline_state`` each view reads its state as a subquery instead of a
    ``sparkml_state_*`` table (Spark: fewer temporary views to analyse at registration).
    """

    def s(table: str) -> str:
        return f"({state_sql(table, d)}) AS state" if inline_state else STATE_PREFIX + table

    views = {
        "experiments": _select(d, s("experiments"), "experiments"),
        "experiment_tags": _select(d, s("experiment_tags"), "experiment_tags", live_only=True),
        "runs": _select(d, s("runs"), "runs"),
        "params": _select(d, s("params"), "params"),
        "tags": _select(d, s("tags"), "tags", live_only=True),
        "metrics": _select(d, RAW_PREFIX + "metrics", "metrics"),
        "latest_metrics": _select(d, s("metrics"), "metrics"),
        "inputs": _select(d, s("inputs"), "inputs"),
        "outputs": _select(d, s("outputs"), "outputs"),
        "logged_models": _select(d, s("logged_models"), "logged_models"),
        "logged_model_tags": _select(d, s("logged_model_tags"), "logged_model_tags", live_only=True),
        "logged_model_params": _select(d, s("logged_model_params"), "logged_model_params"),
    }
    views.update(registry_views(d, s("registry")))
    views["runs_wide"] = runs_wide_sql(d)
    return views


def registry_views(d: Dialect, state: str) -> dict[str, str]:
    """The model registry's views over the ``registry`` table's state: rows of one ``kind`` each,
    named by their registered model's current name (deleted models and versions dropped)."""

    def rows(kind: str, alias: str) -> str:
        return (f"(SELECT * FROM {state} WHERE {d.q('kind')} = '{kind}' "
                f"AND NOT coalesce({d.q('deleted')}, false)) AS {alias}")

    models = rows("model", "m")
    named = f"JOIN {models} ON m.{d.q('model_key')} = x.{d.q('model_key')}"
    times = (f"x.{d.q('creation_time')} AS {d.q('creation_timestamp')}, "
             f"x.{d.q('last_updated_time')} AS {d.q('last_updated_timestamp')}")
    version_cols = ("description", "user_id", "current_stage", "source", "storage_location", "run_id",
                    "run_link", "status", "status_message", "model_id")
    return {
        "registered_models": (f"SELECT x.{d.q('name')}, x.{d.q('description')}, {times} "
                              f"FROM {rows('model', 'x')}"),
        "model_versions": (f"SELECT m.{d.q('name')}, x.{d.q('version')}, {times}, {d.cols(version_cols, 'x.')} "
                           f"FROM {rows('version', 'x')} {named} "
                           f"WHERE x.{d.q('current_stage')} <> 'Deleted_Internal'"),
        "model_aliases": (f"SELECT m.{d.q('name')}, x.{d.q('key')} AS {d.q('alias')}, "
                          f"x.{d.q('target_version')} AS {d.q('version')} "
                          f"FROM {rows('alias', 'x')} {named}"),
        "registered_model_tags": (f"SELECT m.{d.q('name')}, x.{d.q('key')}, x.{d.q('value')} "
                                  f"FROM {rows('model_tag', 'x')} {named}"),
        "model_version_tags": (f"SELECT m.{d.q('name')}, x.{d.q('version')}, x.{d.q('key')}, x.{d.q('value')} "
                               f"FROM {rows('version_tag', 'x')} {named} JOIN {rows('version', 'v')} "
                               f"ON v.{d.q('model_key')} = x.{d.q('model_key')} "
                               f"AND v.{d.q('version')} = x.{d.q('version')} "
                               f"WHERE v.{d.q('current_stage')} <> 'Deleted_Internal'"),
    }


VIEW_NAMES: tuple[str, ...] = tuple(public_views(SPARK))

# Raw tables a public view reads directly (full history); the rest read state tables only.
HISTORY_TABLES = ("metrics",)
# Tables whose change invalidates runs_wide.
WIDE_INPUTS = frozenset({"runs", "experiments", "params", "metrics", "tags"})

VIEW_DOCS: dict[str, str] = {
    "experiments": "one row per experiment (current name, lifecycle_stage, times)",
    "experiment_tags": "live experiment tags",
    "runs": "one row per run: current status, times, lifecycle_stage (active and deleted runs)",
    "params": "run parameters (run_id, key, value)",
    "tags": "live run tags (deleted tags dropped)",
    "metrics": "every logged metric point (full history)",
    "latest_metrics": "latest point per (run_id, key), by (step, timestamp, value) as MLflow defines it",
    "inputs": "datasets and models each run read (kind 'dataset' or 'model')",
    "outputs": "logged models each run produced",
    "logged_models": "one row per logged model (current status)",
    "logged_model_tags": "live logged-model tags",
    "logged_model_params": "logged-model parameters",
    "registered_models": "model registry: one row per registered model (name, description, times)",
    "model_versions": "model registry: one row per live version (name, version, stage, source, run_id, ...)",
    "model_aliases": "model registry: where each alias points now (name, alias, version)",
    "registered_model_tags": "model registry: live tags of registered models",
    "model_version_tags": "model registry: live tags of model versions",
    "runs_wide": "one row per run with experiment_name and params / metrics (latest) / tags as maps",
}
