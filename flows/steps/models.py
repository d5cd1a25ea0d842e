"""The training flow's model steps: the device, and the candidates fitted (the network in
the flow's thread, the baselines beside it), scored and cross-validated, or the sweep's winner."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from flows.results import SignedResults, result_storage
from flows.steps import job_step, persisted, step
from flows.sweep import run_sweep
from tasks.data import features
from tasks.data.features import ModelInputs
from tasks.data.splits import Splits
from tasks.evaluation import scoring
from tasks.evaluation.sweep import search_space
from tasks.models import devices, training
from tasks.models.checkpoints import claimed
from tasks.models.custom import FAMILIES, CandidateEntry, CandidateError
from tasks.platform import faults
from tasks.platform.outcomes import CandidateResults
from tasks.platform.settings import Settings
from tasks.registry import tracking

logger = logging.getLogger(__name__)


@step(name="detect device")
def detect_device(settings: Settings, run_id: str) -> devices.DeviceStrategy:
    device = devices.detect_device()
    tracking.log_params(settings, run_id, device.as_params())
    return device


@job_step(name="fit candidate", task_run_name="fit {candidate.family}")
def fit_candidate(
    settings: Settings,
    candidate: CandidateEntry,
    splits: Splits,
    epochs: int,
    job_key: str,
    inputs: ModelInputs,
) -> Any:
    # Backed up every epoch, keyed by the job: a rerun after a crash resumes from here.
    with claimed(settings.checkpoint_root / job_key / candidate.family) as checkpoints:
        data = (splits.X_train, splits.y_train, splits.X_val, splits.y_val)
        if not candidate.builtin:
            return training.fit_users_candidate(
                candidate, *data, epochs, settings.seed, checkpoints, inputs.task,
                inputs.encoding, settings.baseline_rows,
            )  # fmt: skip
        return training.fit_candidate(
            training.build_candidate(
                candidate.entry, epochs, settings.seed, checkpoints, inputs.task, inputs.encoding
            ),
            *data,
            settings.baseline_rows,
            settings.seed,
        )


@step(name="score candidate", task_run_name="score {family}")
def score_candidate(
    settings: Settings, run_id: str, family: str, estimator: Any, splits: Splits
) -> tuple[dict[str, float], Any]:
    """A candidate's test-set scores (and the Keras network's curves) on the run, and its
    test-set outputs (class probabilities, or predictions of a regressor)."""
    # A baseline scores as it fits, on one thread: beside the network (see fit_candidates).
    # Only there: the limit is the process's, and set and reset from two threads at once,
    # the last one out could leave it at one for the rest of the process.
    one_thread = family in FAMILIES and family != training.KERAS_FAMILY
    with threadpool_limits(1) if one_thread else contextlib.nullcontext():
        scores, outputs = scoring.test_scores(estimator, splits.X_test, splits.y_test)
    tracking.log_metrics(settings, run_id, {f"{family}.{k}": v for k, v in scores.items()})
    tracking.log_fit(settings, run_id, family, estimator)
    return scores, outputs


@job_step(name="cross-validate", task_run_name="cross-validate {family}")
def cross_validate(
    settings: Settings,
    family: str,
    splits: Splits,
    epochs: int,
    job_key: str,
    inputs: ModelInputs,
) -> dict[str, float]:
    return scoring.cross_validated(
        training.build_candidate(
            family, epochs, settings.seed, task=inputs.task, types=inputs.encoding
        ),
        pd.concat([splits.X_train, splits.X_val]),
        pd.concat([splits.y_train, splits.y_val]),
        settings.cv_folds,
        settings.seed,
    )


def train_candidates(
    settings: Settings,
    run_id: str,
    model_name: str,
    splits: Splits,
    epochs: int,
    job_key: str,
    sweep: str,
    cv: bool,
    force: bool,
    inputs: ModelInputs,
    declared: list[CandidateEntry] | None = None,
) -> CandidateResults:
    """The ``declared`` candidates, else the default ones (cross-validating the chosen one
    with ``cv``, unless it is the user's own), or the sweep's winner; the chosen one's scores
    go on the run."""
    if sweep == "none":
        stored = result_storage(settings)
        results = fit_candidates(
            settings, run_id, splits, epochs, job_key, stored, force, inputs, declared
        )
        faults.point(settings, "after-fit")
        if cv and results.entry is not None:
            logger.info("%s is the user's own: not cross-validated", results.family)
        elif cv:
            validate_chosen = persisted(cross_validate, stored, force)
            folds = validate_chosen(settings, results.family, splits, epochs, job_key, inputs)
            results = replace(results, cross_validation=folds)
    else:
        features.check_sweepable(inputs)
        space = search_space(sweep, settings.seed)
        won = run_sweep(settings, run_id, model_name, splits, epochs, space)
        results = CandidateResults(
            won.family, won.estimator, {won.family: won.scores}, won.probabilities, won.cv, []
        )
    tracking.log_metrics(settings, run_id, {**results.chosen_scores, **results.cross_validation})
    return results


def fit_candidates(
    settings: Settings,
    run_id: str,
    splits: Splits,
    epochs: int,
    job_key: str,
    stored: SignedResults,
    force: bool,
    inputs: ModelInputs,
    declared: list[CandidateEntry] | None = None,
) -> CandidateResults:
    """Fit and score the candidates (the ``declared`` ones, else the network and the
    baselines), and choose the best.

    The built-in baselines fit and score one after another, on one thread (OpenMP's and
    BLAS's), on a worker thread beside the network's fit: TensorFlow does not keep every core
    busy, so they mostly use what it leaves (see docs/decisions.md). The network, then the
    user's candidates, fit in the flow's own thread, where Ctrl-C stops them (a worker thread
    would run on to the last epoch before the process could leave). A user's candidate whose
    code fails is named in ``failed``; the others go on.
    """
    fit = persisted(fit_candidate, stored, force)
    rows = min(len(splits.y_train), settings.baseline_rows)
    entries = training.candidates(inputs.task, rows, declared)
    beside = [e for e in entries if e.builtin and e.entry != training.KERAS_FAMILY]
    fitted, scored, after = {}, {}, []
    for entry in beside:
        fitted[entry.family] = fit.submit(
            settings, entry, splits, epochs, job_key, inputs, wait_for=after
        )
        scored[entry.family] = score_candidate.submit(
            settings, run_id, entry.family, fitted[entry.family], splits
        )
        after = [scored[entry.family]]
    estimators, states, outcomes, failed = {}, {}, {}, {}
    # The network beside the baselines; the user's candidates after them (a scikit-learn one
    # limits its threads as they do: from two threads at once, the limit could stick).
    for entry in (e for e in entries if e.entry == training.KERAS_FAMILY):
        state = fit(settings, entry, splits, epochs, job_key, inputs, return_state=True)
        states[entry.family], estimators[entry.family] = state, state.result()
        outcomes[entry.family] = score_candidate(
            settings, run_id, entry.family, estimators[entry.family], splits
        )
    for entry in beside:  # a failed fit raises its own error (its score never ran)
        estimators[entry.family] = fitted[entry.family].result()
        states[entry.family] = fitted[entry.family].state
        outcomes[entry.family] = scored[entry.family].result()
    for entry in (e for e in entries if not e.builtin):
        state = fit(settings, entry, splits, epochs, job_key, inputs, return_state=True)
        try:
            estimators[entry.family] = state.result()
        except CandidateError as exc:
            failed[entry.family] = str(exc)
            logger.warning("%s: the other candidates go on", exc)
            continue
        states[entry.family] = state
        outcomes[entry.family] = score_candidate(
            settings, run_id, entry.family, estimators[entry.family], splits
        )
    if failed:
        tracking.set_run_tags(settings, run_id, {f"mlops.failed.{k}": v for k, v in failed.items()})
    if not outcomes:
        raise CandidateError(f"no candidate could be trained: {'; '.join(failed.values())}")
    reused = sorted(family for family, state in states.items() if state.name == "Cached")
    # In the candidates' order (the network first by default): the first wins a tie.
    scores = {e.family: outcomes[e.family][0] for e in entries if e.family in outcomes}
    best = scoring.best_candidate(scores, settings.promotion_policy(inputs.task).metric)
    chosen = next(e for e in entries if e.family == best)
    # Only the best one's outputs go on (to the plots): the others' go with this call.
    return CandidateResults(
        best, estimators[best], scores, outcomes[best][1], {}, reused,
        failed=failed, entry=None if chosen.builtin else chosen,
    )  # fmt: skip
