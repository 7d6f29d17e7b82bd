"""Run ``sparkml-ops`` in the test's process, as the console script does."""

from __future__ import annotations


def run_cli(*argv: str) -> int:
    """``sparkml-ops *argv``: output goes to the real stdout/stderr (capsys/capfd see it); returns the exit code."""
    from sparkml_ops.cli import main

    try:
        main.main(args=list(argv), prog_name="sparkml-ops")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0
