"""``sparkml-ops models list|versions NAME|promote NAME VERSION --alias A``: the registry in a terminal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sparkml_ops.cli.options import root_option

if TYPE_CHECKING:
    from sparkml_ops.registry.store import DeltaRegistryStore

_FORMATS = click.Choice(("table", "json"))


def _store(root: str | None) -> DeltaRegistryStore:
    from sparkml_ops import config
    from sparkml_ops.registry.store import DeltaRegistryStore

    return DeltaRegistryStore(config.tracking_uri(root))


def _when(ms: int | None) -> str:
    from datetime import datetime, timezone

    return "" if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _emit(rows: list[dict[str, Any]], fmt: str, empty: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(empty)
        return
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())


def _all(search: Callable[..., Any], **kwargs: Any) -> list[Any]:
    """Every page of a registry search."""
    items, token = [], None
    while True:
        page = search(page_token=token, **kwargs)
        items.extend(page)
        token = page.token
        if not token:
            return items


@click.command("list", short_help="List registered models with their aliases and latest version.")
@root_option
@click.option("--filter", "filter_string", default=None, help="MLflow filter, e.g. name LIKE 'fraud%'")
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
def list_models(root: str | None, filter_string: str | None, fmt: str) -> None:
    """List registered models: name, latest version, aliases, last update."""
    store = _store(root)
    rows = []
    for model in _all(store.search_registered_models, filter_string=filter_string, max_results=1000):
        latest = max((int(v.version) for v in model.latest_versions or []), default=None)
        rows.append({"name": model.name, "latest": latest if latest is not None else "",
                     "aliases": ",".join(f"{a}={v}" for a, v in sorted(model.aliases.items())),
                     "updated": _when(model.last_updated_timestamp), "description": model.description or ""})
    _emit(rows, fmt, "no registered models")


@click.command(short_help="List the versions of a registered model.")
@click.argument("name")
@root_option
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
def versions(name: str, root: str | None, fmt: str) -> None:
    """List the versions of registered model NAME, newest first, with their aliases and sources."""
    store = _store(root)
    model = store.get_registered_model(name)  # a missing name is an error, not an empty list
    by_version: dict[int, list[str]] = {}
    for alias, version in model.aliases.items():
        by_version.setdefault(int(version), []).append(alias)
    quotable = "'" not in name  # MLflow's filter strings cannot quote a quote: filter those here
    found = _all(store.search_model_versions, filter_string=f"name = '{name}'" if quotable else None,
                 max_results=10_000, order_by=["version_number DESC"])
    found = [v for v in found if v.name == name]
    rows = [{"version": int(v.version), "aliases": ",".join(sorted(by_version.get(int(v.version), []))),
             "stage": v.current_stage, "created": _when(v.creation_timestamp), "run_id": v.run_id or "",
             "source": v.source} for v in found]
    _emit(rows, fmt, f"registered model {name!r} has no versions")


@click.command(short_help="Point an alias of a registered model at a version.")
@click.argument("name")
@click.argument("version")
@click.option("--alias", "-a", required=True, help="alias to set, e.g. champion")
@root_option
def promote(name: str, version: str, alias: str, root: str | None) -> None:
    """Point alias ALIAS of registered model NAME at VERSION (in one atomic registry commit)."""
    store = _store(root)
    before = store.get_registered_model(name).aliases.get(alias)
    store.set_registered_model_alias(name, alias, version)
    moved = f" (was version {before})" if before is not None and str(before) != str(version) else ""
    click.echo(f"{name}@{alias} -> version {int(version)}{moved}")
