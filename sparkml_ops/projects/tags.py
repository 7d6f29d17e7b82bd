"""Tag keys a project run carries (MLflow's own where one exists)."""

from mlflow.utils.mlflow_tags import (
    MLFLOW_GIT_COMMIT,
    MLFLOW_GIT_REPO_URL,
    MLFLOW_PROJECT_BACKEND,
    MLFLOW_PROJECT_ENTRY_POINT,
    MLFLOW_PROJECT_ENV,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
)

SOURCE_NAME = MLFLOW_SOURCE_NAME
SOURCE_TYPE = MLFLOW_SOURCE_TYPE
GIT_COMMIT = MLFLOW_GIT_COMMIT
GIT_REPO_URL = MLFLOW_GIT_REPO_URL
ENTRY_POINT = MLFLOW_PROJECT_ENTRY_POINT
BACKEND = MLFLOW_PROJECT_BACKEND
ENV_MANAGER = MLFLOW_PROJECT_ENV

BACKEND_NAME = "spark-submit"
PREFIX = "sparkml_ops."
PROJECT_URI = PREFIX + "project.uri"
PROJECT_VERSION = PREFIX + "project.version"  # what the user asked for (commit, tag or branch)
REPO_SUBDIRECTORY = PREFIX + "project.repo_subdirectory"
SOURCE_DIRTY = PREFIX + "project.dirty"
ENV_HASH = PREFIX + "env.hash"
ENV_CACHE_HIT = PREFIX + "env.cache_hit"
ENV_REQUIREMENTS = PREFIX + "env.requirements"
MASTER = PREFIX + "spark.master"
DEPLOY_MODE = PREFIX + "spark.deploy_mode"
APP_ID = PREFIX + "spark.app_id"
SPARK_UI = PREFIX + "spark.ui"
EXIT_CODE = PREFIX + "exit_code"
COMMAND = PREFIX + "command"
PROJECT_PARAMS = PREFIX + "project.params"  # JSON of the parameters the runner passed (rebuild re-passes them)
REBUILD_OF = PREFIX + "rebuild_of"
PINNED_INPUTS = PREFIX + "pinned_inputs"
METRICS_MATCH = PREFIX + "rebuild.metrics_match"
