"""The training flow's steps: thin Prefect tasks around the plain functions of `tasks/`, each
recording what it did on the MLflow run; and the candidates' fan-out.

Two kinds of step. A `step` passes DataFrames and fitted models in memory (hashing them for a
cache key would be waste). A `job_step` (fitting, cross-validation) persists its result under
the artifact root, keyed by the job and the candidate, so that a rerun of an identical job
(after a crash, say) reuses it instead of training again (see flows/results.py).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from flows.results import SignedResults, result_storage
from flows.runs import FLOW_RUN_TAG, mark_crashed, publish_report
from flows.sweep import run_sweep
from tasks.data import features, snapshots, sources, storage
from tasks.data.features import ModelInputs
from tasks.data.splits import Splits, check_target, split_frame
from tasks.evaluation import compression, evidence, explanations, scoring
from tasks.evaluation.sweep import search_space
from tasks.models import devices, preprocessing, training
from tasks.models.checkpoints import claimed
from tasks.platform import events, faults
from tasks.platform.outcomes import CandidateResults, TrainingResult
from tasks.platform.settings import Settings
from tasks.quality import drift, monitoring, validation
from tasks.registry import jobs, registration, tracking, versions
from tasks.registry.store import registry_lock

logger = logging.getLogger(__name__)


step = task(cache_policy=NO_CACHE)


def _job_step_key(context, parameters: dict[str, Any]) -> str:
    return f"{context.task.fn.__name__}-{parameters['family']}-{parameters['job_key']}"


job_step = task(cache_key_fn=_job_step_key, persist_result=True)


def persisted(step_task, results, force: bool):
    """A job step storing its result in `results` (see `result_storage`); --force recomputes."""
    return step_task.with_options(result_storage=results, refresh_cache=force)


@step(name="check storage")
def check_storage(settings: Settings) -> None:
    """Fail before any work when the artifact bucket is missing, unreachable or forbidden."""
    if settings.artifacts_on_s3:
        storage.check_bucket(settings.resolved_artifact_uri)


@step(name="repair registry")
def repair_registry(settings: Settings, model_name: str) -> list[str]:
    """Finish or undo the registrations a killed run left half-done, before anything else;
    end the runs a killed process left RUNNING, in MLflow and in Prefect."""
    with registry_lock(settings):
        done = versions.repair(settings, model_name)
    for run, why in tracking.end_abandoned(settings, model_name):
        mark_crashed(run.data.tags.get(FLOW_RUN_TAG), why)
    return done


@step(name="load data")
def load_data(settings: Settings, run_id: str, uri: str, target: str, suite: str) -> pd.DataFrame:
    """The rows, refused with the reason (also as the run's validation report) when they
    cannot be read or lack the label column, before anything is stored."""
    try:
        frame = sources.load_frame(uri)
        check_target(frame, target)
        return frame
    except sources.DataLoadError as exc:
        report = validation.ValidationReport.for_unreadable(suite, str(exc))
        tracking.log_json(settings, run_id, report.to_dict(), "validation/result.json")
        raise


@step(name="snapshot data")
def snapshot_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, uri: str, target: str
) -> snapshots.Snapshot:
    snapshot = snapshots.store_snapshot(frame, settings.resolved_artifact_uri)
    tracking.log_dataset(settings, run_id, frame, uri, target, snapshot)
    tracking.log_params(
        settings, run_id, {"data_sha256": snapshot.sha256, "data_snapshot": snapshot.uri}
    )
    return snapshot


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


@step(name="validate data")
def validate_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, suite_path: Path
) -> validation.ValidationReport:
    report = validation.validate_frame(frame, suite_path)
    publish_report(settings, run_id, "validation", report.to_markdown(), report.to_dict())
    tracking.set_run_tags(settings, run_id, {"validation_success": str(report.success).lower()})
    if not report.success:
        raise validation.DataValidationError(report)
    return report


@step(name="read feature types")
def read_features(
    settings: Settings,
    run_id: str,
    frame: pd.DataFrame,
    target: str,
    suite_path: Path,
    task: str,
    exclude: list[str],
) -> tuple[ModelInputs, pd.DataFrame]:
    """The task and the feature types (the suite's, else inferred from the rows), on the run;
    and the rows the models learn from (labelled rows, the features, categories as text)."""
    chosen, types = features.resolve_types(
        frame, target, validation.suite_contract(suite_path), task, exclude
    )
    features.check_features(types, frame)
    inputs = ModelInputs(chosen, types, preprocessing.needs_encoding(types, frame))
    tracking.log_params(settings, run_id, inputs.as_params())
    tracking.log_json(settings, run_id, {"task": chosen, **types.to_dict()}, "features/types.json")
    tracking.set_run_tags(settings, run_id, {"task": chosen})
    logger.info("A %s job; features: %s", chosen, types.describe())
    return inputs, preprocessing.model_frame(frame, target, inputs)


@step(name="profile data")
def profile_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, target: str, inputs: ModelInputs
) -> dict:
    """The profile every version keeps of its training data, for later drift checks."""
    profile = drift.build_profile(
        frame, target, settings.drift_sample_rows, settings.seed, inputs.types, inputs.task
    )
    tracking.log_json(settings, run_id, profile, drift.PROFILE_FILE)
    return profile


@step(name="profile predictions")
def profile_predictions(settings: Settings, run_id: str, candidates: CandidateResults) -> None:
    """What the chosen candidate predicts on the test rows, which batch predictions of the
    version are compared with (monitoring)."""
    profile = monitoring.prediction_profile(
        candidates.outputs,
        getattr(candidates.estimator, "classes_", None),
        settings.drift_sample_rows,
        settings.seed,
    )
    tracking.log_json(settings, run_id, profile, monitoring.PREDICTIONS_FILE)


@step(name="check drift")
def check_drift(
    settings: Settings, run_id: str, model_name: str, frame: pd.DataFrame, mode: str
) -> drift.DriftReport:
    """New data against the champion's training profile; `fail` stops before training."""
    champion = versions.alias_holder(settings, model_name, versions.CHAMPION)
    reference = (
        versions.read_version_json(settings, model_name, champion, drift.PROFILE_FILE)
        if champion
        else None
    )
    if reference is None:
        reason = "no champion yet" if champion is None else f"v{champion} keeps no profile"
        report = drift.DriftReport.not_checked(
            reason, settings.drift_psi_threshold, settings.drift_alpha
        )
    else:
        report = drift.compare(
            reference,
            frame,
            f"champion v{champion}",
            settings.drift_psi_threshold,
            settings.drift_alpha,
            settings.seed,
        )
    plotted = report.drifted[: drift.PLOTTED]
    if plotted:
        with tempfile.TemporaryDirectory() as scratch:
            plots = [
                drift.plot_feature(
                    reference, frame, feature, Path(scratch) / drift.plot_filename(feature.feature)
                )
                for feature in plotted
            ]
            tracking.log_files(settings, run_id, plots, "drift/plots")
    publish_report(settings, run_id, "drift", report.to_markdown(), report.to_dict())
    tracking.set_run_tags(settings, run_id, {"drift_detected": str(report.detected).lower()})
    if report.detected and mode == "fail":
        raise drift.DriftDetectedError(report)
    return report


@step(name="split data")
def split_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, target: str, inputs: ModelInputs
) -> Splits:
    """The sets, whose rows move out of ``frame`` (it ends empty: the rows are not held
    twice at the job's peak)."""
    rows = split_frame(
        frame,
        target,
        settings.test_size,
        settings.validation_size,
        settings.seed,
        inputs.task,
        consume=True,
    )
    sources.release_freed_memory()
    sampled = min(settings.baseline_rows, len(rows.X_train))
    tracking.log_params(settings, run_id, {**rows.sizes(), "baseline_rows": sampled})
    return rows


@step(name="detect device")
def detect_device(settings: Settings, run_id: str) -> devices.DeviceStrategy:
    device = devices.detect_device()
    tracking.log_params(settings, run_id, device.as_params())
    return device


@job_step(name="fit candidate", task_run_name="fit {family}")
def fit_candidate(
    settings: Settings,
    family: str,
    splits: Splits,
    epochs: int,
    job_key: str,
    inputs: ModelInputs,
) -> Any:
    # Backed up every epoch, keyed by the job: a rerun after a crash resumes from here.
    with claimed(settings.checkpoint_root / job_key / family) as checkpoints:
        return training.fit_candidate(
            training.build_candidate(
                family, epochs, settings.seed, checkpoints, inputs.task, inputs.encoding
            ),
            splits.X_train,
            splits.y_train,
            splits.X_val,
            splits.y_val,
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
    one_thread = family != training.KERAS_FAMILY
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
) -> CandidateResults:
    """The default candidates (cross-validating the chosen one with ``cv``), or the sweep's
    winner; the chosen one's scores go on the run."""
    if sweep == "none":
        stored = result_storage(settings)
        results = fit_candidates(settings, run_id, splits, epochs, job_key, stored, force, inputs)
        faults.point(settings, "after-fit")
        if cv:
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
) -> CandidateResults:
    """Fit and score the network and the baselines, and choose the best.

    The baselines fit and score one after another, on one thread (OpenMP's and BLAS's), on a
    worker thread beside the network's fit: TensorFlow does not keep every core busy, so they
    mostly use what it leaves (see docs/decisions.md). The network fits in the flow's own
    thread, where Ctrl-C stops it (a worker thread would run on to the last epoch before the
    process could leave).
    """
    fit = persisted(fit_candidate, stored, force)
    rows = min(len(splits.y_train), settings.baseline_rows)
    network, *baselines = training.candidates(inputs.task, rows)
    fitted, scored, after = {}, {}, []
    for family in baselines:
        fitted[family] = fit.submit(
            settings, family, splits, epochs, job_key, inputs, wait_for=after
        )
        scored[family] = score_candidate.submit(settings, run_id, family, fitted[family], splits)
        after = [scored[family]]
    states = {network: fit(settings, network, splits, epochs, job_key, inputs, return_state=True)}
    estimators = {network: states[network].result()}
    outcomes = {network: score_candidate(settings, run_id, network, estimators[network], splits)}
    for family in baselines:  # a failed fit raises its own error (its score never ran)
        estimators[family] = fitted[family].result()
        states[family] = fitted[family].state
        outcomes[family] = scored[family].result()
    reused = sorted(family for family, state in states.items() if state.name == "Cached")
    # In the candidates' order, the network first: it wins a tie.
    scores = {family: outcome[0] for family, outcome in outcomes.items()}
    best = scoring.best_candidate(scores, settings.promotion_policy(inputs.task).metric)
    # Only the best one's outputs go on (to the plots): the others' go with this call.
    return CandidateResults(best, estimators[best], scores, outcomes[best][1], {}, reused)


@step(name="weigh evidence")
def weigh_evidence(
    settings: Settings,
    run_id: str,
    candidates: CandidateResults,
    splits: Splits,
    inputs: ModelInputs,
) -> CandidateResults:
    """The chosen candidate's 95% bootstrap interval of each test metric, on the run as
    `<metric>_low` / `<metric>_high`; and its metrics per slice of the test rows (each value
    of a categorical feature, each class), on the run as slices.json."""
    classes = getattr(candidates.estimator, "classes_", None)
    score = evidence.scorer(splits.y_test, candidates.outputs, classes)
    intervals = evidence.metric_intervals(score, len(splits.y_test), settings.seed)
    found = registration.sliced_rows(splits, inputs)
    sliced = evidence.slice_scores(
        found, evidence.slice_metrics(splits.y_test, candidates.outputs, classes)
    )
    tracking.log_json(settings, run_id, sliced, "evaluation/slices.json")
    bounds = {f"{metric}_{side}": value for metric, (low, high) in intervals.items()
              for side, value in (("low", low), ("high", high))}  # fmt: skip
    tracking.log_metrics(settings, run_id, bounds)
    return replace(candidates, intervals=intervals, slices=sliced)


@step(name="explain predictions")
def explain_predictions(
    settings: Settings, run_id: str, candidates: CandidateResults, splits: Splits, metric: str
) -> tuple[CandidateResults, list[str]]:
    """The chosen candidate's permutation importance on the test rows: every feature's on the
    run (explanation/importance.json), the top ones in the result and a bar plot (for
    image-shaped data also a heat map)."""
    features = explanations.permutation_importance(
        candidates.estimator, splits.X_test, splits.y_test, metric, settings.seed
    )
    tracking.log_json(settings, run_id, features, "explanation/importance.json")
    title = f"{candidates.family}: what drives the predictions (test set)"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = [
            explanations.plot_importances(features, metric, title, folder / "importance.png"),
            explanations.plot_pixel_map(features, title, folder / "importance_map.png"),
        ]
        paths = [path for path in paths if path is not None]
        tracking.log_files(settings, run_id, paths, "plots")
    shown = {"method": "permutation", "metric": metric, "features": features[: explanations.SHOWN]}
    return replace(candidates, explanation=shown), [f"plots/{path.name}" for path in paths]


@step(name="compress model")
def compress_model(
    settings: Settings,
    run_id: str,
    candidates: CandidateResults,
    splits: Splits,
    inputs: ModelInputs,
) -> CandidateResults:
    """The chosen candidate as a compact file for efficient inference (the network as int8
    TFLite, a scikit-learn estimator as ONNX), measured on the test rows against the model
    as trained; on the run (compression/) when kept, for `mlops export`."""
    regression = inputs.task == "regression"
    metric = settings.promotion_policy(inputs.task).metric if regression else "test_accuracy"
    with tempfile.TemporaryDirectory() as scratch:
        found, kept = compression.compress(
            candidates.family,
            candidates.estimator,
            splits.X_test,
            splits.y_test,
            metric,
            candidates.chosen_scores[metric],
            settings.compression_tolerance,
            inputs.encoded,
            Path(scratch),
        )
        if kept is not None:
            tracking.log_files(settings, run_id, [kept], compression.ARTIFACT_DIR)
    return replace(candidates, compression=found)


@step(name="plot evaluation")
def plot_evaluation(
    settings: Settings, run_id: str, candidates: CandidateResults, splits: Splits
) -> list[str]:
    """A classifier's confusion matrix and ROC curves, or a regressor's predicted against
    actual values and residuals, on the test rows."""
    family, outputs = candidates.family, candidates.outputs
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if hasattr(candidates.estimator, "classes_"):
            classes = candidates.estimator.classes_
            paths = [
                scoring.plot_confusion_matrix(
                    splits.y_test,
                    classes[outputs.argmax(axis=1)],
                    classes,
                    f"{family}: confusion matrix (test set)",
                    folder / "confusion_matrix.png",
                ),
                scoring.plot_roc_curves(
                    splits.y_test,
                    outputs,
                    classes,
                    f"{family}: one-vs-rest ROC (test set)",
                    folder / "roc_curves.png",
                ),
            ]
        else:
            paths = [
                scoring.plot_predicted_vs_actual(
                    splits.y_test,
                    outputs,
                    f"{family}: predicted vs actual (test set)",
                    folder / "predicted_vs_actual.png",
                ),
                scoring.plot_residuals(
                    splits.y_test,
                    outputs,
                    f"{family}: residuals (test set)",
                    folder / "residuals.png",
                ),
            ]
        tracking.log_files(settings, run_id, paths, "plots")
    return [f"plots/{path.name}" for path in paths]


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
