"""The tracking, artifact, registry and SQL suites' core cases, re-run on an ``s3://`` root.

The test functions are the local suites' own (imported, so they stay one definition; so are
``log_table``'s ``client`` and ``run_id`` fixtures); the fixtures they build on
(``tracking_uri``, ``filled``) are redefined here to name a fresh prefix
on the moto S3 server instead of a local directory.
"""

from __future__ import annotations

import pytest

from tests.artifacts.test_repo import (  # noqa: F401  (collected here, on S3)
    test_log_list_download_delete_nested_directories,
)
from tests.objectstore.conftest import new_root
from tests.sql.conftest import close, populate
from tests.sql.test_embedded import (  # noqa: F401
    test_deleted_tags_and_runs,
    test_every_view_has_its_columns_and_rows,
    test_issue_example_query_and_pandas_output,
    test_latest_metric_follows_mlflow_semantics,
    test_runs_wide_agrees_with_search_runs,
)
from tests.tracking.test_client_api import (  # noqa: F401
    test_client_run_lifecycle_and_logging,
    test_experiment_lifecycle,
    test_fluent_run_end_to_end,
    test_metric_history_paging_and_bulk_interval,
    test_search_experiments_filter_order_and_paging,
)
from tests.tracking.test_log_table import (  # noqa: F401
    client,
    run_id,
    test_pandas_frames_for_metrics_and_params,
)


@pytest.fixture
def tracking_uri(s3_root: str) -> str:
    """The local suites' fixture, on S3: mlflow points at a fresh ``delta://s3://…`` root."""
    return s3_root


@pytest.fixture(scope="module")
def filled(s3_settings, tmp_path_factory):
    """The SQL suite's populated root (runs, registry, logged model, lineage), on S3."""
    root = new_root()
    uri = f"delta://{root}"
    ids = populate(uri, tmp_path_factory.mktemp("s3-sql-data"))
    yield root, uri, ids
    close(uri)


@pytest.mark.spark
def test_spark_without_hadoop_aws_gets_advice_not_a_stack_trace(spark, filled):
    from sparkml_ops import sql
    from sparkml_ops.errors import NotSupported

    root, _, _ = filled
    with pytest.raises(NotSupported, match=r"hadoop-aws.*sparkml_ops\.sql\.query"):
        sql.register_views(spark, root)
