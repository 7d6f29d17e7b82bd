"""Data lineage for runs: ``log_input`` what a run read, ``load_input`` it back exactly.

The implementation lives in :mod:`sparkml_ops.sql.lineage`; this is the short public name.
"""

from sparkml_ops.sql.lineage import describe, load_input, log_input, resolve_source

__all__ = ["describe", "load_input", "log_input", "resolve_source"]
