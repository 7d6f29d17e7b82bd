"""CLI subcommands ``sparkml-ops sql`` and ``sparkml-ops lineage`` (wired in by sparkml_ops.cli)."""

from __future__ import annotations

import argparse
import json
import sys

from sparkml_ops.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    from sparkml_ops.sql.output import FORMATS

    p = sub.add_parser("sql", help="Run a read-only SQL query over the tracking views (no Spark needed).",
                       description="Run one SELECT over the tracking views: runs_wide, runs, params, metrics, "
                                   "latest_metrics, tags, experiments, inputs, outputs, logged_models, ...")
    p.add_argument("query", nargs="?", help="one SELECT statement, e.g. \"SELECT run_id, metrics['auc'] "
                                            "FROM runs_wide ORDER BY 2 DESC LIMIT 5\"")
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.add_argument("--as-of", help="show the state as of a runs-table version (int) or a timestamp "
                                   "(ISO 8601, e.g. 2026-11-20T12:00; without an offset it is local time)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--output", "-o", help="write to this file instead of standard output (required for parquet "
                                          "on a terminal)")
    p.add_argument("--list-views", action="store_true", help="list the views and what they hold")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("lineage", help="Show what data went into a run and which models came out.",
                       description="Show a run's dataset inputs (Delta table versions, file digests), model "
                                   "inputs, and the logged (and registered) models it produced.")
    p.add_argument("run_id")
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_lineage)


def cmd_sql(args: argparse.Namespace) -> int:
    from sparkml_ops.sql import VIEW_DOCS, query
    from sparkml_ops.sql.output import write

    if args.list_views:
        width = max(map(len, VIEW_DOCS))
        for name, doc in VIEW_DOCS.items():
            print(f"{name.ljust(width)}  {doc}")
        return 0
    if not args.query:
        raise BadInput("give a query, e.g. sparkml-ops sql \"SELECT * FROM runs_wide LIMIT 5\" (or --list-views)")
    if args.format == "parquet" and not args.output and sys.stdout.isatty():
        raise BadInput("--format parquet writes binary data: pass --output FILE or redirect standard output")
    result = query(args.query, args.root, as_of=args.as_of)
    if args.output:
        with open(args.output, "wb") as handle:
            write(result, args.format, handle)
    else:
        write(result, args.format, sys.stdout.buffer)
        sys.stdout.flush()
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from sparkml_ops.sql.lineage import describe
    from sparkml_ops.sql.snapshots import resolve_location

    info = describe(args.run_id, resolve_location(args.root).tracking_uri())
    if args.format == "json":
        print(json.dumps(info, indent=2))
        return 0
    print(f"run {info['run_id']} ({info['run_name']}) in experiment {info['experiment']!r}, {info['status']}")
    print("inputs:" if info["inputs"] or info["model_inputs"] else "inputs: none recorded")
    for item in info["inputs"]:
        pinned = f"version {item['version']}" if item["version"] is not None else f"digest {item['digest']}"
        print(f"  {item['name']} [{item['context'] or '-'}] {item['source_type']} {item['location']} ({pinned})")
    for model_id in info["model_inputs"]:
        print(f"  model {model_id}")
    print("models produced:" if info["logged_models"] else "models produced: none")
    for model in info["logged_models"]:
        print(f"  {model['model_id']} {model['name']!r} {model['status']} at {model['artifact_location']}")
    for version in info["registered_versions"]:
        print(f"  registered: {version['name']} version {version['version']}")
    return 0
