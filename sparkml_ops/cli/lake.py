"""``sparkml-ops info|maintain|recover|migrate``: the tables of a tracking root."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from sparkml_ops.cli.options import root_option

if TYPE_CHECKING:
    from sparkml_ops.tracking.store import DeltaTrackingStore


def open_store(root: str | None) -> DeltaTrackingStore:
    """The tracking store of ``--root`` (or the configured root)."""
    from sparkml_ops import config
    from sparkml_ops.tracking.store import DeltaTrackingStore

    return DeltaTrackingStore(config.tracking_uri(root))


@click.command()
@root_option
@click.option("--no-vacuum", is_flag=True, help="keep unreferenced files (full time travel)")
@click.option("--retention-hours", type=click.IntRange(min=0), default=168, show_default=True,
              help="vacuum files older than this")
def maintain(root: str | None, no_vacuum: bool, retention_hours: int) -> None:
    """Compact, checkpoint and vacuum every table of a root; rebuild its current-state tables (for search)."""
    from sparkml_ops.lake.maintenance import build_current_state
    from sparkml_ops.lake.maintenance import maintain as maintain_tables

    store = open_store(root)
    store.flush()
    for report in maintain_tables(store.location, vacuum=not no_vacuum, retention_hours=retention_hours):
        click.echo(json.dumps(report.as_dict()))
    built = build_current_state(store.location)
    click.echo(json.dumps({"current_state": built if built is not None else "not built: object-store root"}))


@click.command()
@root_option
def recover(root: str | None) -> None:
    """Replay write-ahead logs left by killed processes."""
    from sparkml_ops import config
    from sparkml_ops.lake import Lake, parse_root

    location = parse_root(config.tracking_uri(root), config.resolve("storage_options"))
    lake = Lake.open(location)  # opening replays dead writers' logs
    click.echo(json.dumps({"root": location.uri, "replayed_rows": lake.recovered_on_open + lake.recover()}))


@click.command()
@root_option
def info(root: str | None) -> None:
    """Show each table's version, file count and row count."""
    store = open_store(root)
    out: dict[str, Any] = {"root": store.location.uri, "tables": {}}
    for name, snapshot in store.lake.snapshots.items():
        snapshot.refresh()
        out["tables"][name] = {"version": snapshot.version, "files": snapshot.file_count,
                               "rows": snapshot.table().num_rows}
    click.echo(json.dumps(out, indent=2))


@click.command()
@root_option
def migrate(root: str | None) -> None:
    """Upgrade a root written by an older sparkml_ops layout, in place.

    Only table metadata changes (one commit per table, no data file rewritten), so processes
    reading the root meanwhile keep reading; running it again finishes an interrupted run.
    """
    from sparkml_ops import config
    from sparkml_ops.lake import parse_root
    from sparkml_ops.lake.layout import migrate as migrate_root

    location = parse_root(config.tracking_uri(root), config.resolve("storage_options"))
    click.echo(json.dumps(migrate_root(location).as_dict()))
