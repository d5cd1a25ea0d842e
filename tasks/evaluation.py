"""Metrics on held-out data, cross-validation, and the plots a person looks at."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.base import ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, cross_val_score

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


def test_scores(estimator: ClassifierMixin, X_test, y_test) -> tuple[dict[str, float], np.ndarray]:
    """A fitted candidate's scores on held-out rows (the test set, a fold's), and its class
    probabilities there (for the plots: predicted once, not twice)."""
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
    return pd.concat(parts) if isinstance(parts[0], pd.DataFrame) else np.concatenate(parts)


def best_candidate(scores: dict[str, dict[str, float]], metric: str) -> str:
    """The candidate with the highest metric; ties go to the first listed (the network)."""
    return max(scores, key=lambda family: scores[family][metric])


def cross_validated_accuracy(
    estimator: ClassifierMixin, X, y, folds: int, seed: int
) -> dict[str, float]:
    """Stratified k-fold accuracy of a fresh copy of the estimator (its family, refitted)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(clone(estimator), X, y, cv=splitter, scoring="accuracy")
    logger.info(
        "%d-fold cross-validated accuracy %.4f +/- %.4f", folds, scores.mean(), scores.std()
    )
    return {"cv_accuracy_mean": float(scores.mean()), "cv_accuracy_std": float(scores.std())}


def plot_confusion_matrix(y_true, y_pred, classes, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = metrics.confusion_matrix(y_true, y_pred, labels=classes)
    figure, axes = plt.subplots(figsize=(6, 5))
    metrics.ConfusionMatrixDisplay(matrix, display_labels=classes).plot(
        ax=axes, colorbar=False, cmap="Blues"
    )
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_roc_curves(y_true, probabilities: np.ndarray, classes, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
