"""The ``sparkml-ops`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from sparkml_ops import config
from sparkml_ops.errors import run_command


def _open_store(root: str | None):
    from sparkml_ops.tracking.store import DeltaTrackingStore

    return DeltaTrackingStore(config.tracking_uri(root))


def cmd_maintain(args: argparse.Namespace) -> int:
    from sparkml_ops.lake.maintenance import maintain

    store = _open_store(args.root)
    store.flush()
    reports = maintain(store.location, vacuum=not args.no_vacuum, retention_hours=args.retention_hours)
    for report in reports:
        print(json.dumps(report.as_dict()))
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from sparkml_ops.lake import Lake, parse_root

    location = parse_root(config.tracking_uri(args.root), config.resolve("storage_options"))
    lake = Lake.open(location)  # opening replays dead writers' logs
    print(json.dumps({"root": location.uri, "replayed_rows": lake.recover()}))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    store = _open_store(args.root)
    out = {"root": store.location.uri, "tables": {}}
    for name, snapshot in store.lake.snapshots.items():
        snapshot.refresh()
        out["tables"][name] = {"version": snapshot.version, "files": snapshot.file_count,
                               "rows": snapshot.table().num_rows}
    print(json.dumps(out, indent=2))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    import mlflow

    mlflow.set_tracking_uri(config.tracking_uri(args.root))
    names = args.experiment or None
    frame = mlflow.search_runs(experiment_names=names, search_all_experiments=names is None,
                               filter_string=args.filter or "", order_by=args.order_by or None,
                               max_results=args.max_results)
    columns = [c for c in frame.columns if c in ("run_id", "status") or c.startswith(("params.", "metrics."))]
    print(frame[columns].to_string(index=False) if len(frame) else "no runs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkml-ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
        p.set_defaults(func=func)
        return p

    p = add("maintain", cmd_maintain, "Compact, checkpoint and vacuum every table of a root.")
    p.add_argument("--no-vacuum", action="store_true", help="keep unreferenced files (full time travel)")
    p.add_argument("--retention-hours", type=int, default=168, help="vacuum files older than this (default 168)")
    add("recover", cmd_recover, "Replay write-ahead logs left by killed processes.")
    add("info", cmd_info, "Show each table's version, file count and row count.")
    p = add("runs", cmd_runs, "List runs (MLflow search grammar).")
    p.add_argument("--experiment", action="append", help="experiment name (repeatable; default: all)")
    p.add_argument("--filter", help="e.g. \"params.n = '3' and metrics.loss < 0.1\"")
    p.add_argument("--order-by", action="append", help="e.g. 'metrics.loss ASC' (repeatable)")
    p.add_argument("--max-results", type=int, default=100)
    _register_feature_commands(sub)
    return parser


def _register_feature_commands(sub: argparse._SubParsersAction) -> None:
    """Each feature package owns its subcommands; importing them here stays cheap (no Spark, no mlflow)."""
    from sparkml_ops.models import commands as score_commands
    from sparkml_ops.models.serving import commands as serving_commands
    from sparkml_ops.projects import commands as project_commands
    from sparkml_ops.sql import commands as sql_commands
    from sparkml_ops.tracking import artifact_commands

    for module in (sql_commands, artifact_commands, project_commands, score_commands, serving_commands):
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
