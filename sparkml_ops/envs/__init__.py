"""Packed Python environments: build once, cache by content hash, ship with ``--archives``.

A layer below ``models`` and ``projects``; it knows nothing of Spark sessions or MLflow
tracking. The archive's ``bin/python`` links to the base interpreter it was built with, so
executors need that interpreter at the same path (README "Packed environments").
"""

from sparkml_ops.envs.build import PackedEnv, build_packed_env, default_cache_dir, manifest, unpacked_root
from sparkml_ops.envs.compare import compare_with_current, pinned_current
from sparkml_ops.envs.spark import is_local_master, spark_conf, spark_submit_args
from sparkml_ops.envs.spec import (
    normalise_requirements,
    python_version_from_model,
    read_requirements_file,
    requirements_from_model,
    requirements_from_python_env,
)

__all__ = [
    "PackedEnv",
    "build_packed_env",
    "compare_with_current",
    "default_cache_dir",
    "is_local_master",
    "manifest",
    "normalise_requirements",
    "pinned_current",
    "python_version_from_model",
    "read_requirements_file",
    "requirements_from_model",
    "requirements_from_python_env",
    "spark_conf",
    "spark_submit_args",
    "unpacked_root",
]
