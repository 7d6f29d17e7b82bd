"""Delta Lake layer: table schemas, write-ahead log, group commit, snapshots, maintenance.

Knows nothing of MLflow: the tracking layer maps MLflow's entities onto these tables.
"""

from sparkml_ops.lake.lake import Lake
from sparkml_ops.lake.location import RootLocation, parse_root
from sparkml_ops.lake.schemas import LAYOUT_VERSION, TABLES

__all__ = ["LAYOUT_VERSION", "TABLES", "Lake", "RootLocation", "parse_root"]
