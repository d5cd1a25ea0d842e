"""Metrics on held-out data, cross-validation, and the plots a person looks at."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.base import BaseEstimator, clone, is_regressor
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from tasks.data.features import Task
from tasks.data.splits import sampled_rows
from tasks.evaluation.promotion import lower_is_better

logger = logging.getLogger(__name__)


# Rows a model scores at a time (see in_chunks).
SCORING_ROWS = 16_384
METRICS = (
    "test_accuracy",
    "test_f1_macro",
    "test_precision_macro",
    "test_recall_macro",
    "test_roc_auc_ovr",
)
REGRESSION_METRICS = ("test_rmse", "test_mae", "test_r2")
# Points a scatter plot of the test rows draws at most (a seeded sample of them).
PLOTTED_POINTS = 5_000


def metrics_for(task: Task) -> tuple[str, ...]:
    """The test-set metrics of a job of the task (the candidates' and the champion's)."""
    return REGRESSION_METRICS if task == "regression" else METRICS


def score_probabilities(y_true, probabilities: np.ndarray, classes) -> dict[str, float]:
    """Accuracy, macro precision / recall / F1 and one-vs-rest ROC AUC of class probabilities."""
    classes = np.asarray(classes)
    y_true = np.asarray(y_true)
    y_pred = classes[np.argmax(probabilities, axis=1)]
    if len(classes) == 2:
        auc = metrics.roc_auc_score(y_true == classes[1], probabilities[:, 1])
    else:
        auc = metrics.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=classes)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    return {
        "test_accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "test_f1_macro": float(f1),
        "test_precision_macro": float(precision),
        "test_recall_macro": float(recall),
        "test_roc_auc_ovr": float(auc),
    }


def score_predictions(y_true, predictions: np.ndarray) -> dict[str, float]:
    """Root mean squared error, mean absolute error (both in the target's units) and R² of a
    regressor's predictions."""
    y_true = np.asarray(y_true, dtype=float)
    predictions = np.asarray(predictions, dtype=float)
    return {
        "test_rmse": float(metrics.root_mean_squared_error(y_true, predictions)),
        "test_mae": float(metrics.mean_absolute_error(y_true, predictions)),
        "test_r2": float(metrics.r2_score(y_true, predictions)),
    }


def test_scores(estimator: BaseEstimator, X_test, y_test) -> tuple[dict[str, float], np.ndarray]:
    """A fitted candidate's scores on held-out rows (the test set, a fold's), and its outputs
    there (for the plots: predicted once, not twice): a classifier's class probabilities, a
    regressor's predictions (one float a row)."""
    if is_regressor(estimator):
        predictions = np.asarray(in_chunks(estimator.predict, X_test), dtype=float).ravel()
        return score_predictions(y_test, predictions), predictions
    probabilities = in_chunks(estimator.predict_proba, X_test)
    return score_probabilities(y_test, probabilities, estimator.classes_), probabilities


def in_chunks(predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame) -> Any:
    """``predict`` of the rows, SCORING_ROWS at a time, the parts joined (arrays or frames):
    the copies a model makes of its input (gradient boosting's float64, the network's tensor,
    MLflow's schema enforcement) stay that small, so scoring adds little to the job's peak
    memory (see docs/decisions.md)."""
    parts = [
        predict(X.iloc[start : start + SCORING_ROWS]) for start in range(0, len(X), SCORING_ROWS)
    ]
    return joined(parts)


def joined(parts: list) -> Any:
    """Predictions made part by part, as one (arrays or frames)."""
    return pd.concat(parts) if isinstance(parts[0], pd.DataFrame) else np.concatenate(parts)


def best_candidate(scores: dict[str, dict[str, float]], metric: str) -> str:
    """The candidate with the best metric (the lowest error, else the highest score); ties go
    to the first listed (the network)."""
    sign = -1 if lower_is_better(metric) else 1
    return max(scores, key=lambda family: sign * scores[family][metric])


def cross_validated(estimator: BaseEstimator, X, y, folds: int, seed: int) -> dict[str, float]:
    """k-fold scores of a fresh copy of the estimator (its family, refitted): a classifier's
    accuracy on stratified folds, a regressor's RMSE on shuffled ones."""
    if is_regressor(estimator):
        name, scoring, sign, folding = "rmse", "neg_root_mean_squared_error", -1, KFold
    else:
        name, scoring, sign, folding = "accuracy", "accuracy", 1, StratifiedKFold
    splitter = folding(n_splits=folds, shuffle=True, random_state=seed)
    scores = sign * cross_val_score(clone(estimator), X, y, cv=splitter, scoring=scoring)
    logger.info(
        "%d-fold cross-validated %s %.4f +/- %.4f", folds, name, scores.mean(), scores.std()
    )
    return {f"cv_{name}_mean": float(scores.mean()), f"cv_{name}_std": float(scores.std())}


def pyplot():
    """matplotlib's pyplot, drawing to files only (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def plot_confusion_matrix(y_true, y_pred, classes, title: str, path: Path) -> Path:
    plt = pyplot()
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=classes)
    figure, axes = plt.subplots(figsize=(6, 5))
    metrics.ConfusionMatrixDisplay(matrix, display_labels=classes).plot(
        ax=axes, colorbar=False, cmap="Blues"
    )
    axes.set_title(title)
    return save(figure, path)


def plot_roc_curves(y_true, probabilities: np.ndarray, classes, title: str, path: Path) -> Path:
    plt = pyplot()
    y_true = np.asarray(y_true)
    figure, axes = plt.subplots(figsize=(6, 5))
    shown = classes[1:] if len(classes) == 2 else classes
    for label in shown:
        index = list(classes).index(label)
        fpr, tpr, _ = metrics.roc_curve(y_true == label, probabilities[:, index])
        auc = metrics.auc(fpr, tpr)
        axes.plot(fpr, tpr, linewidth=1.2, label=f"{label} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set(xlabel="False positive rate", ylabel="True positive rate", title=title)
    axes.legend(loc="lower right", fontsize="small", ncol=2)
    return save(figure, path)


def _sampled_points(y_true, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The actual and predicted values a scatter plot draws (at most PLOTTED_POINTS of them,
    a seeded sample: more only blot each other out), and a note of how many when sampled."""
    actual, predicted = np.asarray(y_true, dtype=float), np.asarray(predictions, dtype=float)
    rows = sampled_rows(len(actual), PLOTTED_POINTS, seed=0)
    if rows is None:
        return actual, predicted, ""
    return actual[rows], predicted[rows], f"\n{len(rows):,} of {len(actual):,} rows shown"


def plot_predicted_vs_actual(y_true, predictions: np.ndarray, title: str, path: Path) -> Path:
    """A regressor's predictions against the actual values, with the line they would be on if
    every one were right."""
    plt = pyplot()
    actual, predicted, note = _sampled_points(y_true, predictions)
    figure, axes = plt.subplots(figsize=(6, 5))
    axes.scatter(actual, predicted, s=8, alpha=0.4, linewidths=0)
    low, high = min(actual.min(), predicted.min()), max(actual.max(), predicted.max())
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=0.8)
    axes.set(xlabel="Actual", ylabel="Predicted", title=title + note)
    return save(figure, path)


def plot_residuals(y_true, predictions: np.ndarray, title: str, path: Path) -> Path:
    """A regressor's residuals (actual - predicted) against its predictions, where a pattern
    shows what it misses, and their distribution (of every row)."""
    plt = pyplot()
    residuals = np.asarray(y_true, dtype=float) - np.asarray(predictions, dtype=float)
    actual, predicted, note = _sampled_points(y_true, predictions)
    figure, (scatter, histogram) = plt.subplots(1, 2, figsize=(10, 4.5))
    scatter.scatter(predicted, actual - predicted, s=8, alpha=0.4, linewidths=0)
    scatter.axhline(0, linestyle="--", color="grey", linewidth=0.8)
    scatter.set(xlabel="Predicted", ylabel="Residual (actual - predicted)", title=title + note)
    histogram.hist(residuals, bins=50, color="tab:blue", alpha=0.8)
    histogram.axvline(0, linestyle="--", color="grey", linewidth=0.8)
    histogram.set(xlabel="Residual", ylabel="Rows", title="Distribution of residuals")
    return save(figure, path)
