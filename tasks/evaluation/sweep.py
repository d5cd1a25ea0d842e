"""Hyper-parameter sweep: the candidates of a search, and the score of one on one fold.

Plain functions and plain data, no Prefect: flows/sweep.py fans these out as tasks on threads
or on a Dask cluster, whose workers receive every argument pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.model_selection import ParameterGrid, ParameterSampler, StratifiedKFold

from tasks.evaluation.scoring import test_scores
from tasks.models.training import KERAS_FAMILY, build_candidate

# Per family, values of the estimator's own parameters (KerasMLPClassifier's constructor,
# scikit-learn's `set_params` names). The defaults of tasks.models.training sit inside each grid.
# Slow families first: the folds run in this order, and the quick ones fill the last gaps.
SPACE: dict[str, dict[str, list[Any]]] = {
    KERAS_FAMILY: {"hidden_units": [64, 128], "learning_rate": [1e-3, 3e-3]},
    "gradient_boosting": {"learning_rate": [0.1, 0.3], "max_leaf_nodes": [15, 31]},
    "logistic_regression": {"logisticregression__C": [0.1, 1.0, 10.0]},
    "svm": {"calibratedclassifiercv__estimator__C": [1.0, 10.0]},
}


@dataclass(frozen=True)
class Candidate:
    """One point of the search: a family and the parameters that differ from its defaults."""

    family: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        shown = ",".join(f"{key.rsplit('__', 1)[-1]}={value}" for key, value in self.params.items())
        return f"{self.family}[{shown}]"

    def build(self, epochs: int, seed: int) -> ClassifierMixin:
        return build_candidate(self.family, epochs, seed).set_params(**self.params)


def search_space(
    kind: Literal["grid", "random"],
    seed: int,
    samples: int = 2,
    space: dict[str, dict[str, list[Any]]] = SPACE,
) -> list[Candidate]:
    """Every combination of each family's values (grid), or `samples` of them drawn per family."""
    if kind not in ("grid", "random"):
        raise ValueError(f"unknown search {kind!r}: choose grid or random")
    candidates = []
    for family, values in space.items():
        grid = ParameterGrid(values)
        points = (
            grid
            if kind == "grid"
            else ParameterSampler(values, n_iter=min(samples, len(grid)), random_state=seed)
        )
        candidates += [Candidate(family, dict(sorted(point.items()))) for point in points]
    return candidates


def fold_indices(y: pd.Series, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train rows, held-out rows) positions, the same for every candidate."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def score_fold(
    candidate: Candidate,
    epochs: int,
    seed: int,
    X: pd.DataFrame,
    y: pd.Series,
    train_rows: np.ndarray,
    held_out_rows: np.ndarray,
) -> dict[str, float]:
    """Fit a fresh candidate on one fold's training rows; its metrics on the held-out rows."""
    estimator = candidate.build(epochs, seed).fit(X.iloc[train_rows], y.iloc[train_rows])
    return test_scores(estimator, X.iloc[held_out_rows], y.iloc[held_out_rows])[0]


def summarize(fold_scores: list[dict[str, float]]) -> dict[str, float]:
    """Mean and spread over the folds: test_accuracy per fold becomes cv_accuracy_mean / _std."""
    summary = {}
    for metric in fold_scores[0]:
        values = np.array([scores[metric] for scores in fold_scores])
        name = metric.removeprefix("test_")
        summary[f"cv_{name}_mean"] = float(values.mean())
        summary[f"cv_{name}_std"] = float(values.std())
    return summary


def best_index(summaries: list[dict[str, float]], metric: str) -> int:
    """The candidate with the highest mean of the metric over the folds; ties go to the first."""
    key = f"cv_{metric.removeprefix('test_')}_mean"
    return max(range(len(summaries)), key=lambda i: summaries[i][key])
