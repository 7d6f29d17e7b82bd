"""Every user-facing function says what it takes, what it raises, and shows a call.

The public API is what the packages export in ``__all__``; a newcomer reads these
docstrings (``help()``, an IDE) before the README.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = ["sparkml_ops.lineage", "sparkml_ops.sql", "sparkml_ops.tracking", "sparkml_ops.tuning",
          "sparkml_ops.notebook", "sparkml_ops.projects", "sparkml_ops.models"]


def _functions() -> list[tuple[str, object]]:
    found = []
    for package in PUBLIC:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value):
                found.append((f"{package}.{name}", value))
    return found


@pytest.mark.parametrize(("name", "function"), _functions(), ids=[n for n, _ in _functions()])
def test_docstring_names_arguments_errors_and_an_example(name, function):
    doc = inspect.getdoc(function) or ""
    parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "args")]
    undocumented = [p for p in parameters if p not in doc]
    assert not undocumented, f"{name}: the docstring does not mention {undocumented}"
    assert "Raises:" in doc, f"{name}: no 'Raises:' section"
    assert "Example" in doc, f"{name}: no example call"


def test_the_public_api_is_not_empty():
    assert len(_functions()) >= 20
