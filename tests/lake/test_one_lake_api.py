"""Only sparkml_ops.lake opens, creates or commits to Delta tables (issue 11, "one lake API")."""

from __future__ import annotations

import ast
from pathlib import Path

import sparkml_ops

PACKAGE = Path(sparkml_ops.__file__).parent
DELTA_CALLS = {"DeltaTable", "write_deltalake", "create", "is_deltatable", "create_write_transaction"}


def _delta_calls(path: Path) -> list[str]:
    """Calls of delta-rs's table API in ``path`` (``DeltaTable(...)``, ``DeltaTable.create(...)``, ...)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"DeltaTable", "write_deltalake"}:
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {func.id}(...)")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "DeltaTable" \
                and func.attr in DELTA_CALLS:
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} DeltaTable.{func.attr}(...)")
    return found


def test_no_delta_table_is_opened_outside_the_lake():
    outside = [p for p in PACKAGE.rglob("*.py") if (PACKAGE / "lake") not in p.parents]
    assert outside, "the package has modules outside lake/"
    offenders = [call for path in outside for call in _delta_calls(path)]
    assert offenders == []


def test_the_check_finds_delta_calls_where_they_are():
    inside = [call for path in (PACKAGE / "lake").rglob("*.py") for call in _delta_calls(path)]
    assert any("delta.py" in call for call in inside)


def test_no_module_reaches_into_the_lakes_registry_of_open_roots():
    offenders = [f"{p.relative_to(PACKAGE)}" for p in PACKAGE.rglob("*.py")
                 if p.name != "lake.py" and "Lake._open" in p.read_text()]
    assert offenders == []
