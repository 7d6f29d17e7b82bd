"""``sparkml-ops models serve``: the CLI entry of the REST scoring server."""

from __future__ import annotations

import argparse

from sparkml_ops.models.serving.settings import ServeConfig, env_default


def cmd_serve(args: argparse.Namespace) -> int:
    from sparkml_ops import config as settings
    from sparkml_ops.models.serving.server import serve

    defaults = ServeConfig(model_uri=args.model)
    config = ServeConfig(
        model_uri=args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_batch_rows=args.max_batch_rows if args.max_batch_rows is not None
        else env_default("max_batch_rows", defaults.max_batch_rows),
        max_wait_ms=args.max_wait_ms if args.max_wait_ms is not None
        else env_default("max_wait_ms", defaults.max_wait_ms),
        max_body_bytes=args.max_body_bytes if args.max_body_bytes is not None
        else env_default("max_body_bytes", defaults.max_body_bytes),
        graceful_timeout_s=args.graceful_timeout if args.graceful_timeout is not None
        else env_default("graceful_timeout_s", defaults.graceful_timeout_s),
        fast_path=not args.no_fast_path,
        access_log=args.access_log,
        log_level=args.log_level,
    )
    serve(config, tracking_uri=settings.tracking_uri(args.root))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``models serve`` to the ``sparkml-ops`` parser."""
    models = sub.add_parser("models", help="Serve MLflow models.", description="Serve MLflow models.")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    text = "Serve a model over MLflow's REST scoring protocol (POST /invocations)."
    p = models_sub.add_parser("serve", help=text, description=text)
    p.add_argument("-m", "--model", required=True,
                   help="runs:/<run_id>/<path>, models:/<model_id>, a run id, or a local model directory")
    p.add_argument("--root", help="tracking root: path or delta: URI (default: configured root)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=5000, help="port to bind (default 5000)")
    p.add_argument("-w", "--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--max-batch-rows", type=int, default=None,
                   help="most rows scored in one micro-batch (default 512; $SPARKML_OPS_SERVE_MAX_BATCH_ROWS)")
    p.add_argument("--max-wait-ms", type=float, default=None,
                   help="longest a request waits for a batch to fill (default 0: batch only what is "
                        "already queued; $SPARKML_OPS_SERVE_MAX_WAIT_MS)")
    p.add_argument("--max-body-bytes", type=int, default=None,
                   help="largest request body; bigger ones get 413 (default 64 MiB; "
                        "$SPARKML_OPS_SERVE_MAX_BODY_BYTES)")
    p.add_argument("--graceful-timeout", type=int, default=None,
                   help="seconds in-flight requests get after SIGTERM (default 30; "
                        "$SPARKML_OPS_SERVE_GRACEFUL_TIMEOUT_S)")
    p.add_argument("--no-fast-path", action="store_true",
                   help="score every request through MLflow's pyfunc path (no numpy fast path)")
    p.add_argument("--access-log", action="store_true", help="log every request (slower)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
