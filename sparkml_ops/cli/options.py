"""Options more than one command takes, each declared once.

Use them as decorators: ``@root_option``. Nothing here imports more than click.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

root_option = click.option(
    "--root", default=None, metavar="PATH|URI",
    help="tracking root: path or delta: URI (default: the configured root)")


def parse_pairs(ctx: click.Context | None, param: click.Parameter | None, values: tuple[str, ...]) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options (``-P``, ``--conf``) as a dict; later keys win."""
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            flag = param.opts[0] if param is not None and param.opts else "option"
            raise click.BadParameter(f"{flag} {item!r} must be KEY=VALUE", ctx=ctx, param=param)
        out[key.strip()] = value
    return out


def conf_option(help_text: str = "Spark setting KEY=VALUE (repeatable)") -> Callable[[F], F]:
    """``--conf KEY=VALUE`` (repeatable), passed to the command as a dict."""
    return click.option("--conf", "conf", multiple=True, metavar="KEY=VALUE", callback=parse_pairs, help=help_text)


def master_option(default: str | None, help_text: str) -> Callable[[F], F]:
    """``--master``: the Spark master a job runs on."""
    return click.option("--master", default=default, show_default=default is not None, help=help_text)


def model_option(help_text: str) -> Callable[[F], F]:
    """``-m/--model URI``: the model to score or serve."""
    return click.option("--model", "-m", required=True, metavar="URI", help=help_text)


def comma_list(ctx: click.Context, param: click.Parameter, text: str | None) -> tuple[str, ...]:
    """``a,b,c`` -> ``("a", "b", "c")``; an empty name is an error, not a silent skip."""
    if text is None:
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise click.BadParameter(f"{text!r} has an empty column name", ctx=ctx, param=param)
    return names

