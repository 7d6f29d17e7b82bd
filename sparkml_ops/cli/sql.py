"""``sparkml-ops sql|lineage``: SQL over the tracking views without Spark, and a run's lineage."""

from __future__ import annotations

import json
import sys

import click

from sparkml_ops.cli.options import root_option

FORMATS = ("table", "csv", "json", "parquet")  # sparkml_ops.sql.output.FORMATS (a test keeps them equal)


@click.command(short_help="Run a read-only SQL query over the tracking views (no Spark needed).")
@click.argument("query", required=False)
@root_option
@click.option("--as-of", help="show the state as of a runs-table version (int) or a timestamp "
                              "(ISO 8601, e.g. 2026-11-20T12:00; without an offset it is local time)")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="output format")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="write to this file instead of standard output (required for parquet on a terminal)")
@click.option("--list-views", is_flag=True, help="list the views and what they hold")
def sql(query: str | None, root: str | None, as_of: str | None, fmt: str, output: str | None,
        list_views: bool) -> None:
    """Run one SELECT over the tracking views: runs_wide, runs, params, metrics, latest_metrics, tags,
    experiments, inputs, outputs, logged_models, ...

    QUERY is one SELECT statement, e.g. "SELECT run_id, metrics['auc'] FROM runs_wide ORDER BY 2 DESC LIMIT 5".
    """
    from sparkml_ops.errors import BadInput
    from sparkml_ops.sql import VIEW_DOCS
    from sparkml_ops.sql import query as run_query
    from sparkml_ops.sql.output import write

    if list_views:
        width = max(map(len, VIEW_DOCS))
        for name, doc in VIEW_DOCS.items():
            click.echo(f"{name.ljust(width)}  {doc}")
        return
    if not query:
        raise BadInput("give a query, e.g. sparkml-ops sql \"SELECT * FROM runs_wide LIMIT 5\" (or --list-views)")
    if fmt == "parquet" and not output and sys.stdout.isatty():
        raise BadInput("--format parquet writes binary data: pass --output FILE or redirect standard output")
    result = run_query(query, root, as_of=as_of)
    if output:
        with open(output, "wb") as handle:
            write(result, fmt, handle)  # type: ignore[arg-type]
    else:
        write(result, fmt, sys.stdout.buffer)  # type: ignore[arg-type]
        sys.stdout.flush()


@click.command()
@click.argument("run_id")
@root_option
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def lineage(run_id: str, root: str | None, fmt: str) -> None:
    """Show what data went into a run (Delta table versions, file digests, model inputs) and which
    logged (and registered) models came out."""
    from sparkml_ops.sql.lineage import describe
    from sparkml_ops.sql.snapshots import resolve_location

    info = describe(run_id, resolve_location(root).tracking_uri())
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"run {info['run_id']} ({info['run_name']}) in experiment {info['experiment']!r}, {info['status']}")
    click.echo("inputs:" if info["inputs"] or info["model_inputs"] else "inputs: none recorded")
    for item in info["inputs"]:
        pinned = f"version {item['version']}" if item["version"] is not None else f"digest {item['digest']}"
        click.echo(f"  {item['name']} [{item['context'] or '-'}] {item['source_type']} {item['location']} ({pinned})")
    for model_id in info["model_inputs"]:
        click.echo(f"  model {model_id}")
    click.echo("models produced:" if info["logged_models"] else "models produced: none")
    for model in info["logged_models"]:
        click.echo(f"  {model['model_id']} {model['name']!r} {model['status']} at {model['artifact_location']}")
    for version in info["registered_versions"]:
        click.echo(f"  registered: {version['name']} version {version['version']}")
