"""``sparkml-ops runs|gc``: runs of a tracking root and the storage of deleted ones."""

from __future__ import annotations

import json

import click

from sparkml_ops.cli.options import root_option


@click.command()
@root_option
@click.option("--experiment", multiple=True, help="experiment name (repeatable; default: all)")
@click.option("--filter", "filter_string", default="", help="e.g. \"params.n = '3' and metrics.loss < 0.1\"")
@click.option("--order-by", multiple=True, help="e.g. 'metrics.loss ASC' (repeatable)")
@click.option("--max-results", type=click.IntRange(min=1), default=100, show_default=True)
def runs(root: str | None, experiment: tuple[str, ...], filter_string: str, order_by: tuple[str, ...],
         max_results: int) -> None:
    """List runs (MLflow search grammar)."""
    import mlflow

    from sparkml_ops import config

    mlflow.set_tracking_uri(config.tracking_uri(root))
    names = list(experiment) or None
    frame = mlflow.search_runs(experiment_names=names, search_all_experiments=names is None,
                               filter_string=filter_string, order_by=list(order_by) or None,
                               max_results=max_results)
    columns = [c for c in frame.columns if c in ("run_id", "status") or c.startswith(("params.", "metrics."))]
    click.echo(frame[columns].to_string(index=False) if len(frame) else "no runs")


@click.command()
@root_option
@click.option("--older-than-hours", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="only purge runs/models deleted at least this long ago")
@click.option("--min-age-minutes", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="never mark chunks younger than this")
@click.option("--wait-seconds", type=float, default=None,
              help="pause between marking and sweeping, at least 5 (default 30)")
@click.option("--no-purge", is_flag=True,
              help="do not touch deleted runs; only reclaim chunks that are already unreferenced")
def gc(root: str | None, older_than_hours: float, min_age_minutes: float, wait_seconds: float | None,
       no_purge: bool) -> None:
    """Delete the artifacts of deleted runs and logged models, then reclaim the chunks no live artifact
    references (safe while other processes upload)."""
    from sparkml_ops.cli.lake import open_store
    from sparkml_ops.lake.blobs import DEFAULT_WAIT_S
    from sparkml_ops.tracking.artifact_gc import collect_garbage

    store = open_store(root)
    report = collect_garbage(store, older_than_s=older_than_hours * 3600, min_age_s=min_age_minutes * 60,
                             wait_s=DEFAULT_WAIT_S if wait_seconds is None else wait_seconds,
                             purge=not no_purge)
    click.echo(json.dumps(report))
