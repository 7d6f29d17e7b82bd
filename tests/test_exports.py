"""Lazy package exports: every name resolves, and the names type checkers see are the same."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["sparkml_ops.models", "sparkml_ops.tracking", "sparkml_ops.projects",
                                     "sparkml_ops.sql"])
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__ and all(getattr(module, name) is not None for name in module.__all__)


def test_models_exports_match_the_lazy_table():
    import sparkml_ops.models as models

    assert sorted(models.__all__) == sorted(models._EXPORTS)
