"""The ``sparkml-ops`` command: one click group, the only place that parses arguments.

Commands are found through :data:`COMMANDS` (name -> ``"module:attribute"``) and imported
only when asked for, and the command modules import nothing heavy at their top (mlflow,
pyspark and deltalake are imported inside the command bodies), so ``sparkml-ops --help``
and every ``--help`` answer in a fraction of a second.

Add a command: write it in ``sparkml_ops/cli/<feature>.py`` with the shared options of
:mod:`sparkml_ops.cli.options`, and add one line here. Shell completion is click's:
``eval "$(_SPARKML_OPS_COMPLETE=bash_source sparkml-ops)"`` (``zsh_source``, ``fish_source``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

#: Command name -> "module:attribute" of its click command (imported on first use).
COMMANDS: dict[str, str] = {
    "info": "sparkml_ops.cli.lake:info",
    "maintain": "sparkml_ops.cli.lake:maintain",
    "recover": "sparkml_ops.cli.lake:recover",
    "migrate": "sparkml_ops.cli.lake:migrate",
    "runs": "sparkml_ops.cli.tracking:runs",
    "gc": "sparkml_ops.cli.tracking:gc",
    "sql": "sparkml_ops.cli.sql:sql",
    "lineage": "sparkml_ops.cli.sql:lineage",
    "run": "sparkml_ops.cli.projects:run",
    "rebuild": "sparkml_ops.cli.projects:rebuild",
    "score": "sparkml_ops.cli.models:score",
    "models": "sparkml_ops.cli.models:models",
    "server": "sparkml_ops.cli.server:server",
    "ui": "sparkml_ops.cli.server:ui",
    "tune": "sparkml_ops.cli.tune:tune",
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class CommandError(click.ClickException):
    """Our and MLflow's errors, shown as one line on stderr with exit code 2 (no traceback)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"sparkml-ops: error: {self.format_message()}", err=True, file=file)


def _known_error(exc: BaseException) -> str | None:
    """The message of an error we report in one line, else None.

    The error classes are looked up in ``sys.modules``: an error of a module that was never
    imported cannot have been raised, and importing mlflow here would cost seconds.
    """
    for module, name in (("sparkml_ops.errors", "SparkmlOpsError"), ("mlflow.exceptions", "MlflowException")):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return str(getattr(exc, "message", exc))
    return None


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` when first used."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module_name, _, attr = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        self.commands[cmd_name] = command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; its integer result is the exit code, our errors one line each."""
        try:
            result = super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            message = _known_error(exc)
            if message is None:
                raise
            raise CommandError(message) from exc
        if isinstance(result, int) and result:
            ctx.exit(result)
        return result


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="sparkml_ops", prog_name="sparkml-ops")
def main() -> None:
    """sparkml_ops: MLflow tracking, models and projects on Delta Lake and Spark."""


__all__ = ["COMMANDS", "CommandError", "main"]
