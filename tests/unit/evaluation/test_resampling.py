"""Resamples scored all at once give scikit-learn's metrics of each resample, one by one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tasks.evaluation import evidence, resampling
from tasks.evaluation.resampling import Scorer


def probabilities(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities (with ties) of a model right on most rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    raw = (
        rng.integers(1, 4, (rows, classes))
        + 4 * np.eye(classes)[y] * (rng.random(rows) < 0.8)[:, None]
    )
    return y, raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes", [2, 3, 10])
def test_each_resample_scores_as_scikit_learn_scores_it(classes):
    y, outputs = probabilities(120, classes, seed=classes)
    labels = np.array([f"class {c}" for c in range(classes)])  # text labels, as tables hold
    score = Scorer(labels[y], outputs, labels)
    positions = np.random.default_rng(0).integers(0, len(y), (60, 40))  # small: classes go missing
    drawn = score.draws(positions)
    for draw, rows in enumerate(positions):
        with warnings.catch_warnings():  # ROC AUC without every class: NaN, as the draw's
            warnings.simplefilter("ignore")
            expected = score(rows)
        for metric, value in expected.items():
            assert drawn[metric][draw] == pytest.approx(value, abs=1e-12, nan_ok=True), metric
    undefined = np.isnan(drawn["test_roc_auc_ovr"]).sum()
    assert undefined > 0 if classes == 10 else undefined == 0  # the undefined case exercised


def test_regression_resamples_score_as_scikit_learn_including_a_constant_label():
    rng = np.random.default_rng(3)
    y = np.r_[rng.normal(5, 2, 50), np.full(3, 7.0)]
    predicted = y + rng.normal(0, 1, len(y))
    predicted[-3:] = 7.0
    score = Scorer(y, predicted, None)
    positions = np.vstack([rng.integers(0, len(y), (30, 20)), [[50, 51, 52, 50] * 5]])
    drawn = score.draws(positions)
    for draw, rows in enumerate(positions):
        for metric, value in score(rows).items():
            assert drawn[metric][draw] == pytest.approx(value, abs=1e-12), (metric, draw)
    assert drawn["test_r2"][-1] == 1.0  # a constant label predicted exactly, as scikit-learn says


def test_labels_the_model_never_saw_are_scored_by_scikit_learns_rules():
    y, outputs = probabilities(80, 2, seed=4)
    labels = np.array(["no", "yes"])
    truth = labels[y].astype(object)
    truth[:5] = "maybe"  # production labels may hold a class the training never had
    score = Scorer(truth, outputs, labels)
    positions = np.random.default_rng(1).integers(0, len(y), (10, 80))
    drawn = score.draws(positions)
    for draw, rows in enumerate(positions):
        assert drawn["test_accuracy"][draw] == pytest.approx(score(rows)["test_accuracy"])


def test_an_interval_leaves_out_the_resamples_a_metric_is_undefined_on():
    y, outputs = probabilities(30, 10, seed=2)  # 30 rows, 10 classes: resamples miss classes
    score = evidence.scorer(y, outputs, np.arange(10))
    intervals = evidence.metric_intervals(score, len(y), seed=0)
    point = score(np.arange(len(y)))
    for metric, (low, high) in intervals.items():
        assert low <= point[metric] <= high


def test_resamples_scored_block_by_block_score_as_all_at_once(monkeypatch):
    y, outputs = probabilities(200, 4, seed=5)
    score = Scorer(y, outputs, np.arange(4))
    positions = np.random.default_rng(3).integers(0, len(y), (50, 200))
    whole = score.draws(positions)
    monkeypatch.setattr(resampling, "BLOCK_CELLS", 700)  # blocks of 3 resamples, the last of 2
    for metric, values in score.draws(positions).items():
        np.testing.assert_array_equal(values, whole[metric])
