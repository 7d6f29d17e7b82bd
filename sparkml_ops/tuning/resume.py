"""Rebuild a study from its runs in the lake: the parent's settings, every child trial's outcome.

Finished and failed trials go back into Optuna (so the sampler learns from them and they
count towards ``max_trials``); trials whose run is still RUNNING belonged to a dead driver
and are ended KILLED, not counted, and run again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sparkml_ops.errors import BadInput
from sparkml_ops.tuning import space as S
from sparkml_ops.tuning.launchers import ERROR_TAG
from sparkml_ops.tuning.result import TrialRecord
from sparkml_ops.tuning.study import (
    PARENT_TAG,
    PREFIX,
    RAW_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    Settings,
    StudyState,
    make_sampler,
)


def study_tags(space: Mapping[str, Any], settings: Settings) -> dict[str, str]:
    """Tags of a new study's parent run: what resume checks the new call against."""
    return {STUDY_TAG: "true", PREFIX + "space": S.describe(space), PREFIX + "metric": settings.metric,
            PREFIX + "mode": settings.mode, PREFIX + "sampler": settings.sampler}


def child_runs(client: Any, experiment_id: str, parent_run_id: str) -> list[Any]:
    """Every child run of a study (all pages)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                  max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def check_parent(client: Any, parent_run_id: str, space: Mapping[str, Any], settings: Settings) -> Any:
    """The parent run of the study to resume; raises :class:`BadInput` when the new call does not match it."""
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(parent_run_id)
    except MlflowException as exc:
        raise BadInput(f"resume={parent_run_id!r}: no such run in this tracking root ({exc.message})") from exc
    tags = parent.data.tags
    if tags.get(STUDY_TAG) != "true":
        raise BadInput(f"resume={parent_run_id!r} is not the parent run of a study (no tag {STUDY_TAG})")
    expected = study_tags(space, settings)
    for key in (PREFIX + "space", PREFIX + "metric", PREFIX + "mode"):
        if tags.get(key) != expected[key]:
            what = key.removeprefix(PREFIX)
            raise BadInput(f"resume={parent_run_id!r}: the study's {what} was {tags.get(key)!r}, this call's is "
                           f"{expected[key]!r}; resume with the same {what}")
    return parent


def restore(client: Any, parent: Any, space: Mapping[str, Any], settings: Settings, optuna_study: Any) -> StudyState:
    """Put the study's ended trials back into ``optuna_study``; end dead trials KILLED. Returns the loop's state."""
    import optuna

    state = StudyState(settings)
    parent_id = parent.info.run_id
    lake = getattr(client._tracking_client.store, "lake", None)
    if lake is not None:  # what the dead driver acknowledged but had not committed is part of the study
        lake.recover()
    ended = []
    for run in child_runs(client, parent.info.experiment_id, parent_id):
        tags = run.data.tags
        number = int(tags.get(TRIAL_TAG, "-1"))
        state.next_number = max(state.next_number, number + 1)
        status = run.info.status
        if status in ("RUNNING", "SCHEDULED"):
            client.set_terminated(run.info.run_id, "KILLED")
            continue
        if status not in ("FINISHED", "FAILED") or RAW_TAG not in tags:
            continue
        ended.append(run)
    for run in sorted(ended, key=lambda r: (r.info.end_time or 0, int(r.data.tags[TRIAL_TAG]))):
        raw = json.loads(run.data.tags[RAW_TAG])
        distributions = S.distributions_for(space, raw)
        value = run.data.metrics.get(settings.metric)
        finished = run.info.status == "FINISHED" and value is not None
        optuna_study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE if finished else optuna.trial.TrialState.FAIL,
            value=value if finished else None, params=raw, distributions=distributions))
        state.observe(TrialRecord(int(run.data.tags[TRIAL_TAG]), run.info.run_id,
                                  "FINISHED" if finished else "FAILED", value if finished else None,
                                  S.resolve(space, raw), dict(run.data.metrics), run.info.start_time or 0,
                                  run.info.end_time or 0, run.data.tags.get(ERROR_TAG)))
    if settings.seed is not None and settings.sampler != "grid":
        # a sampler seeded as before would propose the finished trials' points again
        optuna_study.sampler = make_sampler(replace(settings, seed=settings.seed + 7919 * (state.done + 1)), space)
    client.update_run(parent_id, status="RUNNING")
    client.set_tag(parent_id, PREFIX + "resumed_with", str(state.done))
    return state
