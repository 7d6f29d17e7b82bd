"""``sparkml-ops gc``: reclaim the artifact storage of deleted runs and models."""

from __future__ import annotations

import argparse
import json

from sparkml_ops import config
from sparkml_ops.lake.blobs import DEFAULT_WAIT_S, MIN_WAIT_S


def cmd_gc(args: argparse.Namespace) -> int:
    from sparkml_ops.tracking.artifact_gc import collect_garbage
    from sparkml_ops.tracking.store import DeltaTrackingStore

    store = DeltaTrackingStore(config.tracking_uri(args.root))
    report = collect_garbage(store, older_than_s=args.older_than_hours * 3600, min_age_s=args.min_age_minutes * 60,
                             wait_s=args.wait_seconds, purge=not args.no_purge)
    print(json.dumps(report))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    help_text = ("Delete the artifacts of deleted runs and logged models, then reclaim the chunks no live "
                 "artifact references (safe while other processes upload).")
    p = sub.add_parser("gc", help=help_text, description=help_text)
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.add_argument("--older-than-hours", type=float, default=0.0,
                   help="only purge runs/models deleted at least this long ago (default 0)")
    p.add_argument("--min-age-minutes", type=float, default=0.0,
                   help="never mark chunks younger than this (default 0)")
    p.add_argument("--wait-seconds", type=float, default=DEFAULT_WAIT_S,
                   help=f"pause between marking and sweeping, at least {MIN_WAIT_S:g} (default {DEFAULT_WAIT_S:g})")
    p.add_argument("--no-purge", action="store_true",
                   help="do not touch deleted runs; only reclaim chunks that are already unreferenced")
    p.set_defaults(func=cmd_gc)
