"""What drives a model's predictions: permutation importance of each feature on the test rows.

Model-agnostic (every family alike, the preprocessing included): a feature matters as much
as the test score drops when its values are shuffled among the rows, which breaks its link
to the label and to the other features. Every shuffled copy of the rows is scored in one
pass of predictions, so a network pays its per-call cost once, not once per feature.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.data.splits import sampled_rows
from tasks.evaluation.promotion import improvement
from tasks.evaluation.scoring import (
    SCORING_ROWS,
    joined,
    pyplot,
    save,
    score_predictions,
    score_probabilities,
    test_scores,
)

REPEATS = 5
# Test rows the shuffles are drawn from at most (a seeded sample of them).
EXPLAINED_ROWS = 1_000
SHOWN = 20  # features in --json, the card and the bar plot, the most important first
_PIXEL = re.compile(r"^pixel_(\d+)_(\d+)$")


def permutation_importance(estimator, X: pd.DataFrame, y, metric: str, seed: int) -> list[dict]:
    """Per feature: the mean drop of ``metric`` over REPEATS shuffles (positive: the model
    leans on it) and a rough 95% interval (mean +/- two standard errors), most important
    first."""
    rows = sampled_rows(len(X), EXPLAINED_ROWS, seed)
    y = np.asarray(y)
    if rows is not None:
        X, y = X.iloc[rows], y[rows]
    X, y = X.reset_index(drop=True), pd.Series(y)
    baseline = test_scores(estimator, X, y)[0][metric]
    rng = np.random.default_rng(seed)

    def shuffled() -> Iterator[pd.DataFrame]:
        for name in X.columns:
            for _ in range(REPEATS):
                copy = X.copy()
                copy[name] = X[name].to_numpy()[rng.permutation(len(X))]
                yield copy

    # The shuffled copies are predicted many at a time (a call per copy would cost the network
    # more than the work), SCORING_ROWS rows a call: all of them at once, encoded, were the
    # job's peak memory on a wide table. scikit-learn's predictions let go of the GIL (an
    # SVM's kernel sums were most of a default job's explanation): a call per core at once.
    predict = estimator.predict_proba if hasattr(estimator, "classes_") else estimator.predict
    threads = _threads(estimator)  # the calls at once share the rows a call may hold
    copies, per_call, parts = shuffled(), max(1, SCORING_ROWS // (len(X) * threads)), []
    with ThreadPoolExecutor(threads) as pool:
        while calls := [
            pd.concat(group, ignore_index=True)
            for _ in range(threads)
            if (group := list(itertools.islice(copies, per_call)))
        ]:
            parts.extend(pool.map(predict, calls))
    outputs = joined(parts)
    drops = np.empty((len(X.columns), REPEATS))
    for block in range(len(X.columns) * REPEATS):
        part = outputs[block * len(X) : (block + 1) * len(X)]
        score = _metric(estimator, y, part, metric)
        drops[divmod(block, REPEATS)] = improvement(metric, baseline, score)
    mean, spread = drops.mean(axis=1), 2 * drops.std(axis=1, ddof=1) / np.sqrt(REPEATS)
    found = [
        {
            "feature": str(name),
            "importance": float(m),
            "interval": [float(m - s), float(m + s)],
        }
        for name, m, s in zip(X.columns, mean, spread, strict=True)
    ]
    return sorted(found, key=lambda f: -f["importance"])


def _threads(estimator) -> int:
    """Calls at once: one per core; one for a Keras network (its ``model_``), whose predict
    is not safe to call from two threads."""
    return 1 if hasattr(estimator, "model_") else max(1, len(os.sched_getaffinity(0)))


def _metric(estimator, y, outputs: np.ndarray, metric: str) -> float:
    """``metric`` of one shuffled copy's outputs; accuracy computed alone: every score of each
    of hundreds of copies (ROC AUC per class above all) was most of the step's time."""
    if metric == "test_accuracy":
        predicted = estimator.classes_[np.argmax(outputs, axis=1)]
        return float(np.mean(predicted == np.asarray(y)))
    return _score(estimator, y, outputs)[metric]


def _score(estimator, y, outputs: np.ndarray) -> dict[str, float]:
    if hasattr(estimator, "classes_"):
        return score_probabilities(y, outputs, estimator.classes_)
    return score_predictions(y, np.asarray(outputs).ravel())


def plot_importances(features: list[dict], metric: str, title: str, path: Path) -> Path:
    """The most important features as bars with their intervals."""
    plt = pyplot()
    shown = features[:SHOWN][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.5))
    values = [f["importance"] for f in shown]
    errors = [[f["importance"] - f["interval"][0] for f in shown]]
    errors.append([f["interval"][1] - f["importance"] for f in shown])
    axes.barh([f["feature"] for f in shown], values, xerr=errors, color="tab:blue")
    axes.set(xlabel=f"drop in {metric} when shuffled", title=title)
    return save(figure, path)


def plot_pixel_map(features: list[dict], title: str, path: Path) -> Path | None:
    """For image-shaped features (``pixel_ROW_COL``, as digits'), the importances as the
    image they come from; None for other tables."""
    cells = {tuple(map(int, m.groups())): f["importance"]
             for f in features if (m := _PIXEL.match(f["feature"]))}  # fmt: skip
    if not cells or len(cells) < len(features):
        return None
    plt = pyplot()
    height, width = (max(c[i] for c in cells) + 1 for i in (0, 1))
    image = np.zeros((height, width))
    for (row, column), value in cells.items():
        image[row, column] = value
    figure, axes = plt.subplots(figsize=(4.5, 4))
    shown = axes.imshow(image, cmap="viridis")
    figure.colorbar(shown, ax=axes, label="importance")
    axes.set(title=title, xticks=range(width), yticks=range(height))
    return save(figure, path)
