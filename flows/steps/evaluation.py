"""The training flow's evaluation steps: the screen for leaks before fitting; then intervals
and slices, permutation importance, the compact variant, the plots, and the profile of the
predictions that monitoring compares with."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from flows.steps import step
from tasks.data.features import ModelInputs
from tasks.data.splits import Splits
from tasks.evaluation import compression, estimation, evidence, explanations, leakage, scoring
from tasks.platform.outcomes import CandidateResults
from tasks.platform.settings import Settings
from tasks.quality import monitoring
from tasks.registry import registration, tracking

logger = logging.getLogger(__name__)


@step(name="screen for leaks")
def screen_leaks(
    settings: Settings, run_id: str, splits: Splits, inputs: ModelInputs
) -> tuple[leakage.Leak, ...]:
    """The numeric features that alone predict the label almost perfectly where the other
    features cannot (on a sample of the training and validation rows): warned, on the run
    (tag `suspected_leaks`), in the model card and the result. The job goes on: `--exclude`
    or the suite's feature types settle it."""
    leaks = leakage.suspected_leaks(
        splits.X_train,
        splits.y_train,
        splits.X_val,
        splits.y_val,
        inputs.types.numeric,
        inputs.task,
        settings.seed,
    )
    tracking.set_run_tags(settings, run_id, {"suspected_leaks": leakage.tag(leaks)})
    for leak in leaks:
        logger.warning(
            "Suspected leak: %s; check how it is recorded, or leave it out with --exclude %s",
            leak.describe(),
            leak.feature,
        )
    return leaks


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


@step(name="profile predictions")
def profile_predictions(
    settings: Settings, run_id: str, candidates: CandidateResults, splits: Splits
) -> None:
    """What the chosen candidate predicts on the test rows, which batch predictions of the
    version are compared with (monitoring); and what it learns of its errors on the
    validation rows, which estimates a batch's performance before labels: a classifier's map
    from its confidence to its accuracy, a regressor's model of its error."""
    estimator = candidates.estimator
    classes = getattr(estimator, "classes_", None)
    profile = monitoring.prediction_profile(
        candidates.outputs, classes, settings.drift_sample_rows, settings.seed
    )
    tracking.log_json(settings, run_id, profile, monitoring.PREDICTIONS_FILE)
    if not len(splits.y_val):
        return
    if classes is not None:
        validation = scoring.in_chunks(estimator.predict_proba, splits.X_val)
        calibration = estimation.fit_calibration(validation, splits.y_val, classes)
        tracking.log_json(settings, run_id, calibration, estimation.CALIBRATION_FILE)
        return
    predicted = scoring.in_chunks(estimator.predict, splits.X_val)
    loss = estimation.fit_loss_model(splits.X_val, predicted, splits.y_val, settings.seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = estimation.save_loss_model(loss, Path(scratch))
        tracking.log_files(settings, run_id, [path], str(Path(estimation.LOSS_MODEL_FILE).parent))


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


def evaluate(
    settings: Settings,
    run_id: str,
    candidates: CandidateResults,
    splits: Splits,
    inputs: ModelInputs,
) -> tuple[CandidateResults, list[str]]:
    """The chosen candidate weighed (intervals, slices), its predictions profiled and explained,
    its plots made and its compact variant measured: the candidate with all of it, and the
    run's plots (their artifact paths)."""
    candidates = weigh_evidence(settings, run_id, candidates, splits, inputs)
    profile_predictions(settings, run_id, candidates, splits)
    metric = settings.promotion_policy(inputs.task).metric
    candidates, explained = explain_predictions(settings, run_id, candidates, splits, metric)
    plots = plot_evaluation(settings, run_id, candidates, splits) + explained
    return compress_model(settings, run_id, candidates, splits, inputs), plots
