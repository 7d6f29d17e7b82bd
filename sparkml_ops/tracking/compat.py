"""What differs between the MLflow 3 releases sparkml_ops supports (3.6 to 3.17), in one place.

Users run the MLflow their cluster image pins, so the store, the artifact repository and
the GenAI answers must import and behave alike on each release of the declared range
(``setup.py``, README "MLflow versions"). Every internal name that some release of the
range lacks is resolved here, by looking for the name (never by comparing version
numbers), so the rest of the package imports from this module and stays version-blind.
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any

from mlflow.utils.validation import _validate_model_version

from sparkml_ops.errors import BadInput

try:  # newer releases: repositories that take an upload as a stream (the server's fast path)
    from mlflow.store.artifact.artifact_repo import StreamUploadMixin
except ImportError:  # older releases never ask for it: an empty base class keeps our bases valid

    class StreamUploadMixin:  # type: ignore[no-redef]
        """Stand-in for MLflow's marker base on releases whose server does not stream uploads."""


try:
    from mlflow.utils.uri import validate_path_within_directory
except ImportError:

    def validate_path_within_directory(base_dir: str, constructed_path: str) -> str:
        """A download target must stay inside the destination directory, symlinks resolved."""
        base = pathlib.Path(base_dir).resolve()
        target = pathlib.Path(constructed_path).resolve()
        if target != base and base not in target.parents:
            raise BadInput(f"path {constructed_path!r} resolves outside the directory {base_dir!r} "
                           f"(to {str(target)!r}); artifacts are only written inside it")
        return constructed_path


# Store interfaces newer releases add beside AbstractStore (module, class); absent ones are skipped.
_STORE_INTERFACES = (
    ("mlflow.store.tracking.gateway.abstract_mixin", "GatewayStoreMixin"),
    ("mlflow.store.tracking.mcp_server_registry.abstract_mixin", "MCPServerRegistryMixin"),
)


def store_interfaces() -> tuple[type, ...]:
    """The extra tracking-store interface classes of this MLflow (gateway, MCP registry, ...).

    Their methods are GenAI calls a Delta store answers empty or refuses; a release without
    such an interface simply has fewer methods to answer.
    """
    found: list[type] = []
    for module_name, class_name in _STORE_INTERFACES:
        try:
            found.append(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def model_version_number(version: Any) -> int:
    """A model version as its number, after MLflow's own check (and its error message).

    MLflow 3.6's validator returns nothing; newer ones return the number.
    """
    _validate_model_version(version)
    return int(version)
