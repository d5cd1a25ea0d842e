"""A batch's performance estimated before any label arrives, from what the version learned of
its own errors on the validation rows at training time, kept with the version.

A classifier's accuracy from its confidence (confidence-based performance estimation, CBPE):
the expected share of rows it gets right is the mean of the probability of the class it
predicts. A model's own probabilities are seldom calibrated (the platform's SVM on digits: 0.87
confident, 0.97 right), so training fits a map from the top probability to the share of rows
right on the validation rows (isotonic, top-label; monitor/calibration.json); a version
without one is estimated from its probabilities as they are. Its macro F1 from the same
confidence: a row predicted k adds its calibrated accuracy to k's expected true positives, the
rest to k's false positives and, shared as the model's probabilities of the other classes,
to their false negatives; sums over rows, so partitions add up.

A regressor's error by direct loss estimation (DLE, as NannyML's): training fits two small
gradient-boosting models on (a sample of) the validation rows, from a row's features and the
regressor's prediction to its absolute and its squared error (monitor/loss_model.joblib).
A batch's MAE is the mean of its rows' expected absolute errors; its RMSE the root of the mean
expected squared error. It sees where the regressor is worse (a batch of the large diamonds
whose prices it gets less right), which no confidence of a regressor says.

Both hold only while P(label | features) is what the model learned. They follow a shift of
the rows inside the training data's support; they cannot see a change of the concept, or rows
far outside the training data, where a model may be wrong with all its confidence (noised
digits: an SVM's real accuracy fell to 0.55 while its confidence stayed at 0.91).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.data.splits import sampled_rows
from tasks.evaluation import feedback
from tasks.evaluation.evidence import LEVEL

# What the version keeps, on its training run: a classifier's map from confidence to
# accuracy, a regressor's model of its error.
CALIBRATION_FILE = "monitor/calibration.json"
LOSS_MODEL_FILE = "monitor/loss_model.joblib"
# The validation rows the loss model is fitted on, at most (a seeded sample): a few seconds.
LOSS_MODEL_ROWS = 20_000
# The metrics an estimate holds, of either task (each with its `_interval`), named as the
# batch's measured metrics that `feedback` shows them beside.
METRICS = ("accuracy", "f1_macro", "mae", "rmse")
_CATEGORIES = 100  # a text feature's most frequent values the loss model tells apart
_Z = 1.959964  # the normal quantile of a two-sided 95% interval (LEVEL)


def fit_calibration(probabilities: np.ndarray, y_true, classes) -> dict[str, Any]:
    """Top-label calibration on held-out rows: the isotonic regression of whether the predicted
    class is right on its probability, kept as the points `np.interp` reads back."""
    from sklearn.isotonic import IsotonicRegression

    probabilities = np.asarray(probabilities, dtype=float)
    top = probabilities.max(axis=1)
    right = np.asarray(classes)[probabilities.argmax(axis=1)] == np.asarray(y_true)
    fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(top, right)
    return {
        "method": "isotonic, top-label",
        "rows": len(top),
        "confidence": [float(x) for x in fitted.X_thresholds_],
        "accuracy": [float(y) for y in fitted.y_thresholds_],
    }


@dataclass(frozen=True)
class LossModel:
    """A regressor's expected absolute and squared error of a row, from its features (text
    ones as codes of their ``categories``; a value never seen, or missing, as a gap) and the
    regressor's prediction; fitted on ``rows`` validation rows."""

    features: list
    categories: dict[str, list[str]]
    rows: int
    absolute: Any = None
    squared: Any = None

    def inputs(self, features: pd.DataFrame, predicted) -> np.ndarray:
        frame = features.reindex(columns=self.features)
        columns = []
        for name in self.features:
            if name in self.categories:
                text = frame[name].astype("string")
                codes = pd.Categorical(text, categories=self.categories[name]).codes
                columns.append(np.where(codes < 0, np.nan, codes))
            else:
                columns.append(pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float))
        columns.append(np.asarray(predicted, dtype=float).ravel())
        return np.column_stack(columns)

    def expected(self, features: pd.DataFrame, predicted) -> tuple[np.ndarray, np.ndarray]:
        """Each row's expected absolute error, and its expected squared error (no less than
        the square of the first, as it cannot be)."""
        rows = self.inputs(features, predicted)
        absolute = np.clip(self.absolute.predict(rows), 0, None)
        return absolute, np.maximum(self.squared.predict(rows), absolute**2)


def fit_loss_model(features: pd.DataFrame, predicted, y_true, seed: int) -> LossModel:
    """Direct loss estimation: the regressor's absolute and squared errors on held-out rows
    (at most LOSS_MODEL_ROWS of them), each learnt by a small gradient-boosting model."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    predicted = np.asarray(predicted, dtype=float).ravel()
    errors = np.asarray(y_true, dtype=float) - predicted
    rows = sampled_rows(len(features), LOSS_MODEL_ROWS, seed)
    if rows is not None:
        features, predicted, errors = features.iloc[rows], predicted[rows], errors[rows]
    texts = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    categories = {
        str(c): [str(v) for v in features[c].astype("string").value_counts().index[:_CATEGORIES]]
        for c in texts
    }
    model = LossModel(list(features.columns), categories, len(features))
    X = model.inputs(features, predicted)

    def fitted(target: np.ndarray):
        learner = HistGradientBoostingRegressor(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, random_state=seed
        )
        return learner.fit(X, target)

    return replace(model, absolute=fitted(np.abs(errors)), squared=fitted(errors**2))


def save_loss_model(model: LossModel, folder: Path) -> Path:
    import joblib

    path = folder / Path(LOSS_MODEL_FILE).name
    joblib.dump(model, path)
    return path


def load_loss_model(path: Path) -> LossModel | None:
    """The version's loss model (a file of its own training run, as trusted as its model)."""
    import joblib

    found = joblib.load(path)
    return found if isinstance(found, LossModel) else None


@dataclass
class Tally:
    """What an estimate keeps of a batch, partition by partition (a few numbers whatever its
    rows): the rows and, per quantity estimated, the sum of each row's expected value and of
    its variance; and how it was estimated."""

    method: str = ""
    rows: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    variances: dict[str, float] = field(default_factory=dict)
    # A classifier's expected true positives, false positives and false negatives per class
    # (in the order of its probability columns), and what their interval needs (`_confusion`).
    classes: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, quantity: str, expected: np.ndarray, variance: np.ndarray) -> None:
        self.sums[quantity] = self.sums.get(quantity, 0.0) + float(np.sum(expected))
        self.variances[quantity] = self.variances.get(quantity, 0.0) + float(np.sum(variance))

    def __add__(self, other: Tally) -> Tally:
        if not other.rows:
            return self
        if not self.rows:
            return other
        both = Tally(self.method, self.rows + other.rows, dict(self.sums), dict(self.variances))
        for quantity in other.sums:
            both.add(quantity, other.sums[quantity], other.variances[quantity])
        both.classes = {k: self.classes[k] + other.classes[k] for k in self.classes}
        return both

    def estimate(self) -> dict[str, Any] | None:
        """Each estimated metric and the 95% interval of the batch's real one were the
        estimate's model right (its rows' variances add up); None when nothing was estimated
        (a regressor that keeps no loss model)."""
        if not self.rows:
            return None
        found: dict[str, Any] = {}
        for quantity, total in self.sums.items():
            point = total / self.rows
            spread = _Z * math.sqrt(self.variances[quantity]) / self.rows
            low, high = max(0.0, point - spread), point + spread
            if quantity == "accuracy":
                high = min(1.0, high)
            name = quantity
            if quantity == "mse":  # reported as its root, the RMSE
                name, point, low, high = "rmse", *(math.sqrt(v) for v in (point, low, high))
            found[name] = round(point, 6)
            found[f"{name}_interval"] = [round(low, 6), round(high, 6)]
        if self.classes:
            point, spread = _f1_macro(**self.classes)
            found["f1_macro"] = round(point, 6)
            found["f1_macro_interval"] = [
                round(max(0.0, point - spread), 6), round(min(1.0, point + spread), 6)
            ]  # fmt: skip
        return {**found, "level": LEVEL, "method": self.method}


def _confusion(probabilities: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """A batch's expected confusion per class, CBPE's way: a row predicted k and right with
    probability ``right`` (its calibrated accuracy) adds that to k's true positives and the
    rest to k's false positives; the rest is the false negatives of the other classes, shared
    as the model's probabilities of them are (evenly where it gives them none). Sums over
    rows, so a batch's are its partitions' added up; with the sums of products of the rows'
    chances that the interval needs (K x K numbers, each row's outcome one draw)."""
    rows, classes = probabilities.shape
    predicted = probabilities.argmax(axis=1)
    others = probabilities.copy()
    others[np.arange(rows), predicted] = 0.0
    mass = others.sum(axis=1, keepdims=True)
    even = np.full_like(others, 1 / max(classes - 1, 1))
    even[np.arange(rows), predicted] = 0.0
    share = np.divide(others, mass, out=even, where=mass > 0)
    missed = (1 - right)[:, None] * share  # each row's chance to be a false negative of j
    weighted = right[:, None] * missed
    return {
        "tp": np.bincount(predicted, weights=right, minlength=classes),
        "fp": np.bincount(predicted, weights=1 - right, minlength=classes),
        "fn": missed.sum(axis=0),
        "tp_squares": np.bincount(predicted, weights=right**2, minlength=classes),
        "tp_fn": np.column_stack(
            [np.bincount(predicted, weights=column, minlength=classes) for column in weighted.T]
        ),
        "fn_fn": missed.T @ missed,
    }


def _f1_macro(tp, fp, fn, tp_squares, tp_fn, fn_fn) -> tuple[float, float]:
    """The macro F1 of expected counts, over the classes expected or predicted at all (as
    scikit-learn's over the labels present), and the half-width of its 95% interval by the
    delta method (each class's predicted rows, TP + FP, fixed; each row's outcome one draw)."""
    denominator = 2 * tp + fp + fn
    present = denominator > 0
    if not present.any():
        return 0.0, 0.0
    d = np.where(present, denominator, 1.0)
    f1 = 2 * tp / d
    # F1 = 2 TP / (predicted + TP + FN): its slopes in TP and in FN, of the classes present.
    slope_tp = np.where(present, 2 * (tp + fp + fn) / d**2, 0.0)
    slope_fn = np.where(present, -2 * tp / d**2, 0.0)
    # The sum over rows of a row's variance, E[slope^2] - E[slope]^2 of its one outcome.
    variance = slope_tp**2 @ tp + slope_fn**2 @ fn - slope_tp**2 @ tp_squares
    variance -= 2 * slope_tp @ tp_fn @ slope_fn + slope_fn @ fn_fn @ slope_fn
    count = int(present.sum())
    return float(f1[present].mean()), _Z * math.sqrt(max(variance, 0.0)) / count


def _calibrated(top: np.ndarray, calibration: dict[str, Any], classes: int) -> np.ndarray:
    """Top probabilities through the version's map. Below the lowest confidence of a
    validation row the map knows nothing: it falls in a straight line to chance there (a top
    probability of 1/K is a guess, right 1/K of the time), instead of crediting an unsure row
    with the accuracy of the least sure rows it saw, which may all have been right."""
    confidence, accuracy = calibration["confidence"], calibration["accuracy"]
    chance = 1 / classes
    if confidence and confidence[0] > chance:
        confidence, accuracy = [chance, *confidence], [min(chance, accuracy[0]), *accuracy]
    return np.interp(top, confidence, accuracy)


def values(estimate: dict[str, Any] | None) -> dict[str, float]:
    """An estimate's metrics alone (no interval, level or method)."""
    return {name: estimate[name] for name in METRICS if name in (estimate or {})}


def tally(performance: Any, predictions: pd.DataFrame, features: pd.DataFrame) -> Tally:
    """One partition's tally: a classifier's (its output has probability columns) from its
    top probabilities, through ``performance`` when it is the version's calibration; a
    regressor's from ``performance`` when it is the version's loss model, else nothing."""
    columns = [c for c in predictions.columns if c.startswith("probability_")]
    if columns:
        probabilities = predictions[columns].to_numpy(dtype=float)
        top = probabilities.max(axis=1)
        method = "confidence (CBPE), uncalibrated: the version keeps no calibration"
        if isinstance(performance, dict):
            top = _calibrated(top, performance, len(columns))
            method = f"confidence (CBPE), calibrated on {performance['rows']} validation rows"
        found = Tally(method, len(top))
        found.add("accuracy", top, top * (1 - top))  # a sum of Bernoulli draws
        found.classes = _confusion(probabilities, top)
        return found
    if not isinstance(performance, LossModel) or not len(predictions):
        return Tally()
    absolute, squared = performance.expected(features, predictions["prediction"])
    method = f"direct loss estimation, fitted on {performance.rows} validation rows"
    found = Tally(method, len(absolute))
    found.add("mae", absolute, squared - absolute**2)
    # A squared error's variance, were the error normal: at most twice its squared mean.
    found.add("mse", squared, 2 * squared**2)
    return found


def judge(
    estimate: dict[str, Any] | None, test_metrics: dict[str, float], tolerance: float
) -> feedback.Degradation | None:
    """The estimate's headline metric (accuracy, or RMSE) against the version's test metric
    (its run's, with their `_low` / `_high` ends), judged as labels are: a drop when the whole
    interval of the difference lies beyond ``tolerance``. None without an estimate."""
    if not estimate:
        return None
    metric = feedback.HEADLINE["classification" if "accuracy" in estimate else "regression"]
    reference, intervals = feedback.reference_metrics(test_metrics)
    return feedback.judged(
        metric, estimate[metric], estimate[f"{metric}_interval"], reference, intervals,
        tolerance, estimated=True,
    )  # fmt: skip
