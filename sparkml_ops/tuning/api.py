"""``tune`` (a Python objective, one Spark task per trial) and ``tune_project`` (one spark-submit job per trial).

Everything that can be checked without running anything is checked first: the search
space, the settings, the objective's picklability, the project's parameters; then the
parent run is created (or, with ``resume``, found and checked) and the loop starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sparkml_ops.tuning import space as S
from sparkml_ops.tuning.launchers import Launcher, ProjectLauncher, SparkFunctionLauncher
from sparkml_ops.tuning.result import TuneResult
from sparkml_ops.tuning.resume import check_parent, restore, study_tags
from sparkml_ops.tuning.study import PREFIX, Settings, Study, StudyState, new_optuna_study
from sparkml_ops.tuning.worker import pickle_objective

if TYPE_CHECKING:
    from sparkml_ops.projects.options import EnvManagerName

Mode = Literal["min", "max"]
SamplerName = Literal["tpe", "random", "grid"]


def _experiment_id(client: Any, experiment: str | None) -> str:
    if experiment:
        found = client.get_experiment_by_name(experiment)
        return found.experiment_id if found else client.create_experiment(experiment)
    from mlflow.tracking import fluent

    active = fluent._get_experiment_id()  # mlflow.set_experiment(), $MLFLOW_EXPERIMENT_ID
    return str(active) if active is not None else "0"


def _run_study(space: Mapping[str, Any], settings: Settings, make_launcher: Callable[[Any, str, str], Launcher], *,
               experiment: str | None, run_name: str | None, resume: str | None,
               extra_tags: Mapping[str, str]) -> TuneResult:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Param

    tracking_uri = mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri)
    optuna_study = new_optuna_study(settings, space)
    if resume:
        parent = check_parent(client, resume, space, settings)
        experiment_id, parent_id = parent.info.experiment_id, parent.info.run_id
        launcher = make_launcher(client, experiment_id, tracking_uri)
        state = restore(client, parent, space, settings, optuna_study)
    else:
        experiment_id = _experiment_id(client, experiment)
        launcher = make_launcher(client, experiment_id, tracking_uri)
        tags = {**study_tags(space, settings), **extra_tags}
        parent_id = client.create_run(experiment_id, tags=tags,
                                      run_name=run_name or f"tune-{settings.metric}").info.run_id
        params = {"max_trials": settings.max_trials, "parallelism": settings.parallelism,
                  "metric": settings.metric, "mode": settings.mode, "sampler": settings.sampler,
                  "seed": settings.seed, "timeout_s": settings.timeout_s, "max_failures": settings.max_failures,
                  "patience": settings.patience}
        client.log_batch(parent_id, params=[Param(f"tune.{k}", str(v)) for k, v in params.items()])
        state = StudyState(settings)
    try:
        study = Study(client=client, experiment_id=experiment_id, parent_run_id=parent_id, space=space,
                      settings=settings, launcher=launcher, optuna_study=optuna_study, state=state)
        return study.run()
    finally:
        launcher.close()


def _settings(parallelism: int, **kwargs: Any) -> Settings:
    return Settings.check(parallelism=parallelism, **kwargs)


def tune(objective: Callable[[dict[str, Any]], float | dict[str, float]], space: Mapping[str, Any], *,
         max_trials: int, parallelism: int | None = None, metric: str = "loss", mode: Mode = "min",
         experiment: str | None = None, run_name: str | None = None, sampler: SamplerName = "tpe",
         seed: int | None = None, timeout_s: float | None = None, max_failures: int | None = None,
         patience: int | None = None, spark: Any = None, resume: str | None = None) -> TuneResult:
    """Minimise (or maximise) ``objective`` over ``space`` with Optuna, each trial a Spark task and a child run.

    The study is a parent run; each trial is a child run whose params are the trial's values,
    so the whole search is queryable (``sparkml_ops.sql.query``) and visible in MLflow's UI.

    Args:
        objective: ``objective(params) -> number | dict of numbers``; runs on an executor with
            the trial's child run active, so ``mlflow.log_*`` inside it lands there.
        space: parameter name → distribution (:func:`uniform`, :func:`loguniform`,
            :func:`randint`, :func:`choice`) or a constant.
        max_trials: trials to run in all (a resumed study counts those already finished).
        parallelism: trials at once (default: the session's default parallelism).
        metric: the objective's value to optimise when it returns a dict (default ``loss``).
        mode: ``"min"`` or ``"max"``.
        experiment: experiment name for the parent run (default: MLflow's current one).
        run_name: the parent run's name.
        sampler: ``"tpe"``, ``"random"`` or ``"grid"`` (Optuna's samplers).
        seed: the sampler's seed, for a repeatable study.
        timeout_s: stop launching trials after this many seconds.
        max_failures: stop after this many failed trials (a trial that raises is FAILED).
        patience: stop after this many trials without improvement.
        spark: the SparkSession (default: the active or a new one).
        resume: the parent run id of a study whose driver died; it continues where it stopped.

    Raises:
        BadInput: a bad space or setting (checked before any Spark job starts).
        TuningFailed: no trial finished.

    Example: ``tune(lambda p: (p["x"] - 2) ** 2, {"x": uniform(-5, 5)}, max_trials=30, parallelism=2)``.
    """
    S.validate(space)
    common = dict(max_trials=max_trials, metric=metric, mode=mode, sampler=sampler, seed=seed,
                  timeout_s=timeout_s, max_failures=max_failures, patience=patience)
    _settings(parallelism if parallelism is not None else 1, **common)  # every static check before Spark starts
    if sampler == "grid":
        S.grid_space(space)
    payload = pickle_objective(objective)
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
    settings = _settings(parallelism or spark.sparkContext.defaultParallelism, **common)

    def launcher(client: Any, experiment_id: str, tracking_uri: str) -> Launcher:
        return SparkFunctionLauncher(spark, payload, client=client, experiment_id=experiment_id,
                                     tracking_uri=tracking_uri, metric=metric)

    return _run_study(space, settings, launcher, experiment=experiment, run_name=run_name, resume=resume,
                      extra_tags={PREFIX + "kind": "function"})


def tune_project(uri: str, space: Mapping[str, Any], *, entry_point: str = "main", max_trials: int,
                 parallelism: int = 2, metric: str = "loss", mode: Mode = "min", experiment: str | None = None,
                 run_name: str | None = None, sampler: SamplerName = "tpe", seed: int | None = None,
                 timeout_s: float | None = None, max_failures: int | None = None, patience: int | None = None,
                 master: str | None = None, env_manager: EnvManagerName | None = None,
                 spark_conf: Mapping[str, str] | None = None, spark_args: Sequence[str] = (),
                 resume: str | None = None) -> TuneResult:
    """Tune an MLflow project: each trial is a project run (spark-submit job), its params the trial's values.

    Args:
        uri: the project (a directory or a git URI, as for :func:`sparkml_ops.projects.run`).
        space: parameter name → distribution; the entry point must accept every name.
        entry_point: the MLproject entry point each trial runs; it must log ``metric``.
        max_trials: trials to run in all.
        parallelism: project jobs at once.
        metric, mode, experiment, run_name, sampler, seed, timeout_s, max_failures, patience,
            resume: as in :func:`tune`.
        master: Spark master for each job (default: the configured one).
        env_manager: ``local``, ``virtualenv``, ``uv`` or ``conda`` (default: the configured one).
        spark_conf: extra ``--conf`` settings for each spark-submit.
        spark_args: extra spark-submit arguments.

    Raises:
        BadInput: a bad space or setting, or an entry point that does not accept a parameter of
            ``space`` (checked before any job starts).
        TuningFailed: no trial finished.

    Example: ``tune_project("./my_project", {"C": loguniform(1e-3, 10)}, max_trials=8, metric="rmse")``.
    """
    from sparkml_ops.projects.mlproject import load_project
    from sparkml_ops.projects.source import fetch

    S.validate(space)
    settings = _settings(parallelism, max_trials=max_trials, metric=metric, mode=mode, sampler=sampler, seed=seed,
                         timeout_s=timeout_s, max_failures=max_failures, patience=patience)
    if sampler == "grid":
        S.grid_space(space)
    _check_project(uri, entry_point, space, fetch, load_project)

    def launcher(client: Any, experiment_id: str, tracking_uri: str) -> Launcher:
        return ProjectLauncher(uri, entry_point=entry_point, client=client, experiment_id=experiment_id,
                               tracking_uri=tracking_uri, metric=metric, master=master, env_manager=env_manager,
                               spark_conf=spark_conf, spark_args=spark_args)

    return _run_study(space, settings, launcher, experiment=experiment, run_name=run_name, resume=resume,
                      extra_tags={PREFIX + "kind": "project", PREFIX + "project_uri": uri,
                                  PREFIX + "entry_point": entry_point})


def _check_project(uri: str, entry_point: str, space: Mapping[str, Any], fetch: Any, load_project: Any) -> None:
    """The project exists, has the entry point, and every required parameter is tuned (before any job)."""
    import shutil
    import tempfile
    from pathlib import Path

    from sparkml_ops.errors import BadInput

    workdir = Path(tempfile.mkdtemp(prefix="sparkml_ops-tune-"))
    try:
        entry = load_project(fetch(uri, None, workdir).directory).entry_point(entry_point)
        missing = sorted(p.name for p in entry.parameters.values() if p.required and p.name not in _names(space))
        if missing:
            raise BadInput(f"entry point {entry.name!r} of {uri} requires parameters {missing} that the search "
                           "space does not give: add them to the space (a constant is fine) or give them defaults")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _names(space: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Every flattened parameter name a trial can produce (all branches of every choice)."""
    names: set[str] = set()
    for key, dist in space.items():
        if isinstance(dist, S.Choice) and any(isinstance(o, Mapping) for o in dist.options):
            for option in dist.options:
                names |= _names(option, f"{prefix}{key}.") if isinstance(option, Mapping) else {prefix + key}
        elif isinstance(dist, Mapping):
            names |= _names(dist, f"{prefix}{key}.")
        else:
            names.add(prefix + key)
    return names
