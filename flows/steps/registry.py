"""The training flow's registry steps: what a killed run left repaired, the job's identity
and an identical job found, the champion re-scored, the decision, the serve check, the
registration and its announcement."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flows.runs import FLOW_RUN_TAG, mark_crashed
from flows.steps import step
from flows.steps.data import check_storage
from tasks.data import snapshots
from tasks.data.features import ModelInputs
from tasks.data.splits import Splits
from tasks.models.custom import CandidateEntry
from tasks.platform import events, project
from tasks.platform.outcomes import TrainingResult
from tasks.platform.project import PromotionDeclaration
from tasks.platform.settings import Settings, load_settings
from tasks.quality import drift
from tasks.registry import jobs, registration, tracking, versions
from tasks.registry.store import registry_lock

logger = logging.getLogger(__name__)


def before_work(
    data_uri: str,
    model_name: str,
    suite: str | None,
    candidates: list[CandidateEntry] | None = None,
    promotion: PromotionDeclaration | None = None,
    sweep: str = "none",
) -> tuple[Settings, Path]:
    """Before any work: the settings read (with the model's own promotion policy), the job's
    inputs checked (its suite's path found, its candidates imported), the storage reachable,
    and what a killed run left half-registered repaired."""
    settings = project.applied(load_settings(), promotion)
    suite_path = jobs.check_inputs(settings, data_uri, model_name, suite, candidates, sweep)
    check_storage(settings)
    repair_registry(settings, model_name)
    return settings, suite_path


@step(name="repair registry")
def repair_registry(settings: Settings, model_name: str) -> list[str]:
    """Finish or undo the registrations a killed run left half-done, before anything else;
    end the runs a killed process left RUNNING, in MLflow and in Prefect."""
    with registry_lock(settings):
        done = versions.repair(settings, model_name)
    for run, why in tracking.end_abandoned(settings, model_name):
        mark_crashed(run.data.tags.get(FLOW_RUN_TAG), why)
    return done


@step(name="identify job")
def identify_job(
    settings: Settings,
    run_id: str,
    snapshot: snapshots.Snapshot,
    suite_path: Path,
    parameters: dict[str, Any],
) -> str:
    """The job's key: the data, the suite, the parameters and the settings that change a fit."""
    key = jobs.job_key(snapshot.sha256, suite_path, {**parameters, **settings.fit_knobs()})
    tracking.set_run_tags(settings, run_id, {"job_key": key})
    return key


@step(name="look for an identical job")
def find_identical_job(
    settings: Settings, run_id: str, model_name: str, job_key: str, snapshot: snapshots.Snapshot
) -> TrainingResult | None:
    """The result of the version an identical job (same data, parameters and code) registered,
    if any: nothing to train."""
    version = versions.find_job(settings, model_name, job_key)
    if version is None:
        return None
    tracking.set_run_tags(
        settings, run_id, {"mlops.skipped": "true", "mlops.skipped_for_version": version.version}
    )
    logger.info(
        "An identical job already registered %s v%s: nothing to train (--force retrains)",
        model_name,
        version.version,
    )
    return TrainingResult.skipped_for(
        model_name,
        version,
        tracking.run_metrics(settings, version.run_id),
        snapshot.sha256,
        drift.DriftReport.not_checked(
            "identical job skipped", settings.drift_psi_threshold, settings.drift_alpha
        ),
        versions.alias_holder(settings, model_name, versions.CHAMPION),
    )


@step(name="score champion")
def score_champion(
    settings: Settings, model_name: str, splits: Splits, inputs: ModelInputs
) -> registration.ChampionScores:
    """Re-score the current champion on this run's test set (None scores if it cannot be)."""
    return registration.score_champion(
        settings, model_name, splits.X_test, splits.y_test, inputs.task
    )


# Steps that are a plain function of tasks/ as it is.
decide_promotion = step(name="decide promotion")(registration.decide)


register_and_promote = step(name="register and promote")(registration.register_and_promote)


announce_decision = step(name="announce decision")(events.announce_decision)


serve_check = step(name="serve check")(registration.store_and_serve)
