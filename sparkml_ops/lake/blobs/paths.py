"""Blob paths: relative POSIX paths with no way out of their namespace.

One rule set for every caller, so a bad name is refused before a byte is written.
"""

from __future__ import annotations

import re

from sparkml_ops.errors import BadInput

_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")
RULE = "a relative POSIX path of non-empty names, without '.', '..', NUL or a leading '/'"


def check_path(path: object, what: str = "path", *, allow_empty: bool = False) -> str:
    """``path`` normalised (one trailing '/' dropped), or :class:`BadInput` naming the rule."""
    if not isinstance(path, str):
        raise BadInput(f"{what} {path!r} must be a string: {RULE}")
    if "\x00" in path:
        raise BadInput(f"{what} {path!r} contains a NUL character; it must be {RULE}")
    text = path[:-1] if path.endswith("/") and len(path) > 1 else path
    if text in ("", "/"):
        if allow_empty and text == "":
            return ""
        raise BadInput(f"{what} {path!r} is empty; it must be {RULE}")
    if text.startswith(("/", "\\")) or _DRIVE.match(text):
        raise BadInput(f"{what} {path!r} is absolute; it must be {RULE}")
    for name in text.split("/"):
        if name == "":
            raise BadInput(f"{what} {path!r} has an empty name (a '//' or trailing '/'); it must be {RULE}")
        if name in (".", ".."):
            raise BadInput(f"{what} {path!r} contains {name!r}; it must be {RULE}")
    return text


def join(*parts: str) -> str:
    """Join already-checked paths, skipping empty ones."""
    return "/".join(p for p in parts if p)


def parents(path: str) -> list[str]:
    """Every proper ancestor of ``path``: ``a/b/c`` -> ``['a', 'a/b']``."""
    names = path.split("/")
    return ["/".join(names[:i]) for i in range(1, len(names))]
