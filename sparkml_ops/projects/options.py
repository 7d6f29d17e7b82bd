"""Option groups of :func:`sparkml_ops.projects.run`: where the job runs, its environment, its run.

Small frozen objects instead of one long parameter list (the way delta-rs's ``CommitProperties``
groups commit options): each group is built once, reused across runs, and validated before
anything is fetched, built or recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparkml_ops.envs import is_local_master
from sparkml_ops.errors import BadInput
from sparkml_ops.projects.command import check_master

DeployMode = Literal["client", "cluster"]
EnvManagerName = Literal["virtualenv", "local", "conda", "uv"]
DEFAULT_MASTER = "local[*]"
ENV_MANAGERS: dict[str, EnvManagerName] = {"virtualenv": "virtualenv", "local": "local", "conda": "conda", "uv": "uv"}


def env_manager_name(value: str | None) -> EnvManagerName | None:
    """``value`` (a CLI argument or a recorded tag) as an env manager; :class:`BadInput` names the allowed ones."""
    if value is None:
        return None
    if value not in ENV_MANAGERS:
        raise BadInput(f"env manager {value!r} is not one of {sorted(ENV_MANAGERS)}")
    return ENV_MANAGERS[value]


@dataclass(frozen=True)
class SparkOptions:
    """Where and how ``spark-submit`` runs the job.

    ``master``: ``local[*]`` (default), ``local[N]``, ``spark://…``, ``yarn``, ``k8s://…``;
    ``deploy_mode``: ``client`` or ``cluster`` (cluster needs a YARN/Kubernetes master);
    ``conf``: Spark settings (``--conf K=V``); ``args``: extra ``spark-submit`` arguments.

    Example: ``SparkOptions(master="yarn", deploy_mode="cluster", conf={"spark.executor.memory": "4g"})``.
    """

    master: str | None = None
    deploy_mode: DeployMode = "client"
    conf: Mapping[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()

    def checked_master(self) -> str:
        """The master to submit to; raises :class:`BadInput` for a deploy mode the master cannot run."""
        master = check_master(self.master or DEFAULT_MASTER)
        if self.deploy_mode not in ("client", "cluster"):
            raise BadInput(f"deploy_mode {self.deploy_mode!r} must be 'client' or 'cluster'")
        if self.deploy_mode == "cluster" and is_local_master(master):
            raise BadInput(f"deploy_mode 'cluster' needs a cluster master, not {master!r}")
        if self.deploy_mode == "cluster" and master.startswith("spark://"):
            raise BadInput(f"Spark standalone ({master}) cannot run Python applications in cluster deploy mode; "
                           "use client mode there, or YARN/Kubernetes for cluster mode")
        return master


@dataclass(frozen=True)
class EnvOptions:
    """The job's Python environment.

    ``manager``: ``virtualenv`` (default; a packed env built from the project's
    ``python_env.yaml``/``requirements.txt``), ``uv`` (the same), ``local`` (this interpreter)
    or ``conda``; ``cache_dir``: where packed envs are cached; ``progress``: build progress on stderr.

    Example: ``EnvOptions(manager="local")``.
    """

    manager: EnvManagerName | None = None
    cache_dir: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class TrackingOptions:
    """The MLflow run the job logs into.

    ``experiment_name``/``experiment_id``: the run's experiment (default: the active one);
    ``run_name``: default ``<project>:<entry point>``; ``tracking_uri``: default
    ``mlflow.get_tracking_uri()``; ``tags``: extra run tags; ``pin_inputs``: Delta input versions
    the job must read (set by rebuilds).

    Example: ``TrackingOptions(experiment_name="nightly", tags={"team": "fraud"})``.
    """

    experiment_name: str | None = None
    experiment_id: str | None = None
    run_name: str | None = None
    tracking_uri: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    pin_inputs: Sequence[Mapping[str, Any]] = ()
