"""MLflow tracking-store plugin over the Delta tables of :mod:`sparkml_ops.lake`.

``log_table`` (Arrow-native bulk logging) is exported lazily: importing a submodule of this
package does not import MLflow's validation or pyarrow compute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the lazy export; at run time __getattr__ imports it
    from sparkml_ops.tracking.bulk import log_table

__all__ = ["log_table"]


def __getattr__(name: str) -> Any:
    if name == "log_table":
        from sparkml_ops.tracking.bulk import log_table

        return log_table
    raise AttributeError(f"module 'sparkml_ops.tracking' has no attribute {name!r}")
