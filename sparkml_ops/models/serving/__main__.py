"""``python -m sparkml_ops.models.serving -m URI [options]``: same as ``sparkml-ops models serve``."""

from __future__ import annotations

import argparse
import sys

from sparkml_ops.errors import run_command
from sparkml_ops.models.serving.commands import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparkml_ops.models.serving")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", "serve", *(sys.argv[1:] if argv is None else argv)])
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
