"""The registry's SQL views, and time travel: which version was @champion at an earlier instant."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from sparkml_ops import sql

ALIAS = "SELECT version FROM model_aliases WHERE name = 'fraud' AND alias = 'champion'"


def _instant() -> datetime:
    """A moment strictly between two commits (commit timestamps have millisecond resolution)."""
    time.sleep(0.05)
    moment = datetime.now(timezone.utc)
    time.sleep(0.05)
    return moment


@pytest.fixture
def promoted(registry, root):
    """'fraud' v1..v3; @champion on 1, then 2, then deleted; instants between the moves."""
    registry.create_registered_model("fraud")
    for i in range(3):
        registry.create_model_version("fraud", f"/src/{i + 1}")
    registry.set_registered_model_alias("fraud", "champion", 1)
    on_one = _instant()
    registry.set_registered_model_alias("fraud", "champion", 2)
    on_two = _instant()
    registry.delete_registered_model_alias("fraud", "champion")
    return str(root), on_one, on_two


def test_alias_time_travel_in_the_embedded_engine(promoted):
    root, on_one, on_two = promoted
    assert sql.query(ALIAS, root).to_pylist() == []
    assert sql.query(ALIAS, root, as_of=on_one).to_pylist() == [{"version": 1}]
    assert sql.query(ALIAS, root, as_of=on_two.isoformat()).to_pylist() == [{"version": 2}]
    versions = sql.query("SELECT name, version, source FROM model_versions ORDER BY version", root).to_pylist()
    assert versions == [{"name": "fraud", "version": i, "source": f"/src/{i}"} for i in (1, 2, 3)]


@pytest.mark.spark
def test_alias_time_travel_in_spark_matches(spark, promoted):
    root, on_one, on_two = promoted
    for as_of, expected in ((on_one, [1]), (on_two, [2]), (None, [])):
        sql.register_views(spark, root, as_of=as_of)
        assert [r.version for r in spark.sql(ALIAS).collect()] == expected
        assert sql.query(ALIAS, root, as_of=as_of).column("version").to_pylist() == expected
