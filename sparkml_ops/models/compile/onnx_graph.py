"""ONNX graphs (the ``onnx`` flavor) → Spark SQL: ai.onnx.ml operators of linear models and tree ensembles."""

from __future__ import annotations

from pathlib import Path

from sparkml_ops.models.compile.base import Feature, NotCompilable


def compile_onnx(path: Path, conf: dict, features: list[Feature], inputs) -> tuple[str, str, int]:
    """(SQL, description, tree count) for the ONNX model at ``path``."""
    raise NotCompilable("ONNX models do not compile yet")
