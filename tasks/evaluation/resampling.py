"""The test metrics of a model's outputs on the whole test set and on bootstrap resamples of it,
every resample at once.

The point scores are scikit-learn's own. The resamples are scored as arrays (one row of
positions per resample): a confusion matrix per resample from one `bincount`, ROC AUC from
ranks within each resample, regression errors as means along the rows. Scoring 200 resamples
one `score_probabilities` call at a time cost about 25 ms a call, seconds a job for the
intervals and as much again for the paired comparison; as arrays it is milliseconds.
A resample on which a metric is undefined (ROC AUC of one missing a class) is NaN.
"""

from __future__ import annotations

import numpy as np

CLASSIFIER_METRICS = (
    "test_accuracy",
    "test_f1_macro",
    "test_precision_macro",
    "test_recall_macro",
    "test_roc_auc_ovr",
)
REGRESSOR_METRICS = ("test_rmse", "test_mae", "test_r2")
# Positions scored at once: each array of a block about 4 MB (200 resamples of 20,000 rows,
# all at once, added 200 MB at a 1M-row job's peak).
BLOCK_CELLS = 500_000


class Scorer:
    """A model's test metrics on the rows at some positions: of class probabilities
    (``classes`` their labels), or of a regressor's predictions (``classes`` None); only
    ``metrics`` when given."""

    def __init__(self, y_true, outputs, classes, metrics: tuple[str, ...] | None = None):
        self.y_true, self.outputs = np.asarray(y_true), np.asarray(outputs)
        self.classes = None if classes is None else np.asarray(classes)
        default = REGRESSOR_METRICS if classes is None else CLASSIFIER_METRICS
        self.metrics = metrics or default
        # Each label's position among the classes (-1: one the model never saw), found once.
        self.codes = None if self.classes is None else _codes(self.y_true, self.classes)

    def __call__(self, rows: np.ndarray) -> dict[str, float]:
        """The metrics of the rows at ``rows`` (scikit-learn's; ValueError where undefined)."""
        from tasks.evaluation.scoring import score_predictions, score_probabilities

        y, outputs = self.y_true[rows], self.outputs[rows]
        if self.classes is None:
            scores = score_predictions(y, outputs)
        elif self.metrics == ("test_accuracy",):  # what a slice of one class can be scored by
            predicted = self.classes[outputs.argmax(axis=1)]
            scores = {"test_accuracy": float(np.mean(predicted == y))}
        else:
            scores = score_probabilities(y, outputs, self.classes)
        return {metric: scores[metric] for metric in self.metrics}

    def draws(
        self, positions: np.ndarray, metrics: tuple[str, ...] | None = None
    ) -> dict[str, np.ndarray]:
        """Each metric (of ``metrics``, default all) of each resample (a row of
        ``positions``), NaN where undefined; a block of resamples at a time, so that the
        arrays stay small whatever the test set."""
        metrics = metrics or self.metrics
        step = max(1, BLOCK_CELLS // positions.shape[1])
        parts = [self._drawn(positions[at : at + step], metrics)
                 for at in range(0, len(positions), step)]  # fmt: skip
        return {metric: np.concatenate([part[metric] for part in parts]) for metric in metrics}

    def _drawn(self, positions: np.ndarray, metrics: tuple[str, ...]) -> dict[str, np.ndarray]:
        if self.classes is None:
            y, predicted = self.y_true.astype(float), self.outputs.astype(float)
            return _regressor_draws(y, predicted, positions, metrics)
        if (self.codes >= 0).all():
            return _classifier_draws(self.codes, self.outputs, positions, metrics)
        # Labels the model never saw (production's): scikit-learn's rules, a resample at a time.
        scored = [self._or_nan(rows) for rows in positions]
        return {metric: np.array([s[metric] for s in scored]) for metric in metrics}

    def _or_nan(self, rows: np.ndarray) -> dict[str, float]:
        try:
            return self(rows)
        except ValueError:
            return dict.fromkeys(self.metrics, np.nan)


def _codes(y, classes) -> np.ndarray:
    """Each label's position in ``classes``; -1 for a label not among them."""
    order = np.argsort(classes)
    at = np.searchsorted(classes[order], y).clip(0, len(classes) - 1)
    return np.where(classes[order][at] == y, order[at], -1)


def _regressor_draws(y, predicted, positions, metrics) -> dict[str, np.ndarray]:
    errors = (y - predicted)[positions]
    found = {
        "test_rmse": np.sqrt(np.mean(errors**2, axis=1)),
        "test_mae": np.mean(np.abs(errors), axis=1),
    }
    if "test_r2" in metrics:
        drawn = y[positions]
        squares = np.sum(errors**2, axis=1)
        spread = np.sum((drawn - drawn.mean(axis=1, keepdims=True)) ** 2, axis=1)
        constant = np.where(squares == 0, 1.0, 0.0)  # scikit-learn's score of a constant label
        with np.errstate(divide="ignore", invalid="ignore"):
            found["test_r2"] = np.where(spread > 0, 1 - squares / spread, constant)
    return {metric: found[metric] for metric in metrics}


def _classifier_draws(codes, probabilities, positions, metrics) -> dict[str, np.ndarray]:
    k = probabilities.shape[1]
    truth, predicted = codes[positions], probabilities.argmax(axis=1)[positions]
    found = {"test_accuracy": np.mean(truth == predicted, axis=1)}
    if set(metrics) & {"test_f1_macro", "test_precision_macro", "test_recall_macro"}:
        found.update(_macro_scores(truth, predicted, k))
    if "test_roc_auc_ovr" in metrics:
        found["test_roc_auc_ovr"] = _roc_auc(truth, probabilities, positions, k)
    return {metric: found[metric] for metric in metrics}


def _macro_scores(truth, predicted, k: int) -> dict[str, np.ndarray]:
    """Macro precision, recall and F1 over the labels each resample holds or predicts, as
    scikit-learn's (zero where undefined)."""
    rounds = len(truth)
    cells = np.arange(rounds)[:, None] * k * k + truth * k + predicted
    confusion = np.bincount(cells.ravel(), minlength=rounds * k * k).reshape(rounds, k, k)
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    actual, claimed = confusion.sum(axis=2), confusion.sum(axis=1)
    present = (actual + claimed) > 0

    def macro(numerator, denominator):
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(denominator > 0, numerator / denominator, 0.0)
        return np.sum(share * present, axis=1) / present.sum(axis=1)

    return {
        "test_precision_macro": macro(hits, claimed),
        "test_recall_macro": macro(hits, actual),
        "test_f1_macro": macro(2 * hits, actual + claimed),
    }


def _roc_auc(truth, probabilities, positions, k: int) -> np.ndarray:
    """One-vs-rest ROC AUC (two classes: of the second), macro-averaged, from the ranks of
    each class's probability within each resample (ties averaged)."""
    from scipy.stats import rankdata

    columns = [1] if k == 2 else range(k)
    aucs = []
    for column in columns:
        positive = truth == column
        ranks = rankdata(probabilities[:, column][positions], axis=1)
        hits, misses = positive.sum(axis=1), (~positive).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (np.sum(ranks * positive, axis=1) - hits * (hits + 1) / 2) / (hits * misses)
        aucs.append(np.where((hits > 0) & (misses > 0), auc, np.nan))
    return np.mean(aucs, axis=0)
