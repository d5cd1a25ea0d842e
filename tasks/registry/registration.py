"""Register and promote: the champion re-scored on the new test rows, the model stored and
served before it registers, and the all-or-nothing transaction that registers a version with
its lineage, card and decision, then moves its alias."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import PlatformError, first_line
from tasks.data.features import ModelInputs, Task
from tasks.data.splits import Splits
from tasks.evaluation import evidence, promotion, scoring
from tasks.models.preprocessing import categories
from tasks.platform import faults
from tasks.platform.outcomes import CandidateResults, Lineage
from tasks.platform.settings import Settings
from tasks.registry import model_card, packaging, serving, tracking, versions
from tasks.registry.store import failed_write, registry_lock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionScores:
    """The champion's scores on a run's test rows; None scores (with why) if it has none."""

    version: str | None
    scores: dict[str, float] | None
    error: str | None
    outputs: np.ndarray | None = None  # its class probabilities or predictions, row by row
    classes: np.ndarray | None = None  # the labels of its probability columns


def score_champion(
    settings: Settings, model_name: str, X_test, y_test, task: Task = "classification"
) -> ChampionScores:
    """Re-score the current champion on this run's test rows."""
    version = versions.alias_holder(settings, model_name, versions.CHAMPION)
    if version is None:
        return ChampionScores(None, None, None)
    try:
        model = packaging.load_model(settings, f"models:/{model_name}@{versions.CHAMPION}")
        predictions = scoring.in_chunks(model.predict, packaging.conform(model, X_test))
        if packaging.is_classification(predictions) != (task == "classification"):
            kind = "regression" if task == "classification" else "classification"
            return ChampionScores(version, None, f"it is a {kind} model; this is a {task} job")
        if task == "regression":
            classes, outputs = None, predictions["prediction"].to_numpy(dtype=float)
            scores = scoring.score_predictions(y_test, outputs)
        else:
            classes, outputs = packaging.class_probabilities(predictions)
            scores = scoring.score_probabilities(as_labels(y_test), outputs, classes)
    except Exception as exc:  # a champion of another schema cannot block the record of why
        return ChampionScores(version, None, first_line(exc))
    return ChampionScores(version, scores, None, outputs, classes)


def as_labels(y) -> np.ndarray:
    """Labels as a registered model's probability columns name them (text)."""
    return pd.Series(y).astype(str).to_numpy()


def compare_with_champion(
    settings: Settings,
    metric: str,
    candidates: CandidateResults,
    champion: ChampionScores,
    y_test,
) -> evidence.Comparison | None:
    """The challenger against the champion on the same test rows, by the policy's metric
    (None without a champion scored on them)."""
    if champion.outputs is None:
        return None
    y = np.asarray(y_test)
    challenger = evidence.scorer(
        y, candidates.outputs, getattr(candidates.estimator, "classes_", None)
    )
    if champion.classes is None:
        previous = evidence.scorer(y, champion.outputs, None)
        power = 1 if metric == "test_mae" else 2
        errors = (
            np.abs(y - candidates.outputs) ** power,
            np.abs(y - champion.outputs) ** power,
        )
        return evidence.compare(metric, challenger, previous, len(y), settings.seed, errors=errors)
    labels = as_labels(y)
    previous = evidence.scorer(labels, champion.outputs, champion.classes)
    classes = candidates.estimator.classes_
    correct = (
        classes[candidates.outputs.argmax(axis=1)] == y,
        champion.classes[champion.outputs.argmax(axis=1)] == labels,
    )
    return evidence.compare(metric, challenger, previous, len(y), settings.seed, correct=correct)


def sliced_rows(splits: Splits, inputs: ModelInputs) -> list[dict]:
    """The test rows by each categorical feature's values and by class (a classifier)."""
    return evidence.slices(
        splits.X_test, splits.y_test, inputs.types.categorical, inputs.task == "classification"
    )


def decide(
    settings: Settings,
    candidates: CandidateResults,
    champion: ChampionScores,
    splits: Splits,
    inputs: ModelInputs,
) -> promotion.PromotionDecision:
    """The settings' promotion policy for the task applied to the challenger and the champion,
    with their paired comparison on the test rows; a promotion is turned down when a slice
    of enough rows regressed past the slice tolerance (named in the reason)."""
    policy = settings.promotion_policy(inputs.task)
    comparison = compare_with_champion(settings, policy.metric, candidates, champion, splits.y_test)
    decision = promotion.decide(
        policy,
        candidates.chosen_scores,
        champion.scores,
        champion.version,
        champion.error,
        comparison.as_dict() if comparison else None,
    )
    if champion.outputs is None or not candidates.slices:
        return decision
    labels = as_labels(splits.y_test) if champion.classes is not None else splits.y_test
    previous = evidence.slice_scores(
        sliced_rows(splits, inputs),
        evidence.slice_metrics(labels, champion.outputs, champion.classes),
    )
    metric = policy.metric if policy.metric in candidates.slices[0] else "test_accuracy"
    why = evidence.regressed_slice(
        candidates.slices, previous, metric, settings.slice_min_rows, settings.slice_tolerance
    )
    return promotion.blocked(decision, why) if why else decision


def store_and_serve(
    settings: Settings,
    run_id: str,
    candidates: CandidateResults,
    splits: Splits,
    inputs: ModelInputs,
    warm: serving.WarmServer | None = None,
) -> serving.ServeCheck:
    """The chosen candidate stored on the run as an MLflow model (read back and checked), then
    served by MLflow's scoring server (``warm``'s, started while the job ran, if it waits),
    where it must answer a canary request from its input example as it predicts here (unless
    MLOPS_SERVE_CHECK=false). Outside the registry lock: nothing here is registered yet."""
    logged = packaging.log_model(
        settings,
        run_id,
        candidates.estimator,
        splits.features,
        splits.X_test.head(5),
        categories(inputs.types, splits.X_train),
        candidates.entry,
    )
    if not settings.serve_check:
        return serving.ServeCheck(logged, None)
    with tempfile.TemporaryDirectory() as scratch:
        served = faults.served_model(settings, "serve-check", logged.uri, Path(scratch))
        return serving.check(settings, logged, settings.serve_check_timeout, served, warm)


def register_and_promote(
    settings: Settings,
    lineage: Lineage,
    candidates: CandidateResults,
    served: serving.ServeCheck,
    plots: list[str],
    decision: promotion.PromotionDecision,
    force: bool,
) -> tuple[versions.RegisteredVersion | None, promotion.PromotionDecision]:
    """Register the chosen candidate (stored and served) with its lineage and its serve check,
    write its card, move the alias.

    All or nothing: if the card, the tags or the alias fail, the new version is deleted, and
    registrations a killed process left half-done are finished or removed first. Under the
    registry lock the decision is checked again (compare-and-set): if another run moved the
    champion meanwhile, this version is registered as a challenger instead; if an identical
    job registered meanwhile, nothing is (the version is None) unless the run was forced.
    """
    name, run_id = lineage.model, lineage.run_id
    faults.point(settings, "before-register")
    with registry_lock(settings):
        versions.repair(settings, name)
        if not force and versions.find_job(settings, name, lineage.job_key) is not None:
            return None, decision
        holder = versions.alias_holder(settings, name, versions.CHAMPION)
        decision = promotion.recheck(decision, holder)
        version = versions.create_version(
            settings,
            run_id,
            name,
            served.model,
            lineage.tags(candidates.family)
            | (candidates.compression.tags() if candidates.compression else {})
            | served.tags(),
            description=f"{candidates.family}: {decision.alias} ({decision.reason})",
        )
        faults.point(settings, "after-register")
        try:
            record_decision(settings, lineage, version, candidates, plots, decision)
        except BaseException as exc:
            versions.delete_version(settings, version)
            if isinstance(exc, Exception) and not isinstance(exc, PlatformError):
                recorded = f"could not record the decision on {name} v{version.version}"
                raise failed_write(
                    settings,
                    exc,
                    f"{recorded} (its card, tags or alias): {first_line(exc)}; the version "
                    "was removed: nothing registered",
                ) from exc
            raise
        faults.point(settings, "after-alias")
        versions.complete_registration(settings, version)
    return version, decision


def record_decision(
    settings: Settings,
    lineage: Lineage,
    version: versions.RegisteredVersion,
    candidates: CandidateResults,
    plots: list[str],
    decision: promotion.PromotionDecision,
) -> None:
    """The model card, the decision on the version and the run, and the alias it earned."""
    run_id = lineage.run_id
    card = model_card.render(lineage, version.version, candidates, decision, plots)
    tracking.log_text(settings, run_id, card, "model_card/model_card.md")
    tracking.log_json(settings, run_id, decision.as_dict(), "promotion/decision.json")
    decision_tags = {
        "promotion_decision": decision.alias,
        "promotion_reason": decision.reason[:5000],
        "promotion_rule": decision.rule,
        "promotion_champion_version": decision.champion_version or "none",
        "promotion_test": decision.test,
    }
    if decision.comparison:
        low, high = decision.comparison["difference_interval"]
        decision_tags |= {
            "promotion_difference": f"{decision.comparison['difference']:.6g}",
            "promotion_difference_interval": f"[{low:.6g}, {high:.6g}]",
            "promotion_p_value": f"{decision.comparison['p_value']:.6g}",
        }
    versions.set_version_tags(settings, lineage.model, version.version, decision_tags)
    tracking.set_run_tags(settings, run_id, {**decision_tags, "model_version": version.version})
    versions.assign_alias(
        settings,
        lineage.model,
        version.version,
        decision.alias,
        actor=f"training flow run {lineage.flow_run_id}",
        reason=decision.reason,
    )
