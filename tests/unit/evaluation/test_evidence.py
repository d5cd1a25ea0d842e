"""Intervals and paired comparisons: what they claim, on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.evaluation import evidence
from tasks.evaluation.promotion import PromotionPolicy, decide


def classifier(correct_share: float, rows: int = 400, seed: int = 0):
    """Labels, and probabilities of a model right on about ``correct_share`` of the rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    right = rng.random(rows) < correct_share
    predicted = np.where(right, y, 1 - y)
    confidence = rng.uniform(0.55, 0.95, rows)
    p1 = np.where(predicted == 1, confidence, 1 - confidence)
    return y, np.column_stack([1 - p1, p1])


def test_intervals_cover_the_point_and_narrow_with_more_rows():
    widths = []
    for rows in (200, 5_000):
        y, probabilities = classifier(0.9, rows)
        score = evidence.scorer(y, probabilities, np.array([0, 1]))
        point = score(np.arange(rows))
        intervals = evidence.metric_intervals(score, rows, seed=0)
        for metric, (low, high) in intervals.items():
            assert low <= point[metric] <= high
        widths.append(intervals["test_accuracy"][1] - intervals["test_accuracy"][0])
        assert evidence.metric_intervals(score, rows, seed=0) == intervals  # seeded
    assert widths[1] < widths[0] / 3  # about sqrt(25) narrower


def test_a_model_against_itself_is_no_difference_and_a_clearly_better_one_is():
    y, weak = classifier(0.75)
    _, strong = classifier(0.97, seed=0)
    classes = np.array([0, 1])
    correct = {name: p.argmax(axis=1) == y for name, p in (("weak", weak), ("strong", strong))}

    def compared(new, old):
        return evidence.compare(
            "test_accuracy",
            evidence.scorer(y, {"weak": weak, "strong": strong}[new], classes),
            evidence.scorer(y, {"weak": weak, "strong": strong}[old], classes),
            len(y),
            seed=0,
            correct=(correct[new], correct[old]),
        )

    same = compared("weak", "weak")
    assert same.difference == 0 and same.p_value == pytest.approx(1.0)
    better = compared("strong", "weak")
    assert better.test == "McNemar exact test" and better.p_value < 1e-6
    assert 0 < better.difference_interval[0] <= better.difference <= better.difference_interval[1]


def test_regression_errors_are_compared_pairwise():
    rng = np.random.default_rng(1)
    y = rng.normal(50, 10, 300)
    close, far = y + rng.normal(0, 1, 300), y + rng.normal(0, 5, 300)
    result = evidence.compare(
        "test_rmse",
        evidence.scorer(y, close, None),
        evidence.scorer(y, far, None),
        len(y),
        seed=0,
        errors=((y - close) ** 2, (y - far) ** 2),
    )
    assert result.test == "t-test on per-row errors" and result.p_value < 1e-6
    assert result.difference > 0.5  # RMSE more than halved: a share of the champion's


def test_the_superior_test_keeps_a_noise_level_challenger_out():
    scores = {"test_accuracy": 0.9525, "test_f1_macro": 0.95}
    champion = {"test_accuracy": 0.95, "test_f1_macro": 0.95}
    noise = {
        "metric": "test_accuracy",
        "test": "McNemar exact test",
        "difference": 0.0025,
        "difference_interval": [-0.02, 0.025],
        "p_value": 0.8,
    }
    policy = PromotionPolicy("test_accuracy", 0.0, ("test_f1_macro",), 0.01)
    assert decide(policy, scores, champion, "1", None, noise).promote  # point: any gain
    superior = PromotionPolicy("test_accuracy", 0.0, ("test_f1_macro",), 0.01, "superior")
    kept_out = decide(superior, scores, champion, "1", None, noise)
    assert not kept_out.promote and kept_out.reason.startswith("not significantly better")
    assert "p = 0.8" in kept_out.reason and kept_out.evidence()["mode"] == "superior"
    worse = {**noise, "difference": -0.01, "difference_interval": [-0.02, 0.001]}
    lenient = PromotionPolicy("test_accuracy", 0.0, ("test_f1_macro",), 0.01, "non_inferior")
    assert decide(lenient, {**scores, "test_accuracy": 0.94}, champion, "1", None, worse).promote
    clearly = {**worse, "difference_interval": [-0.04, -0.01]}
    refused = decide(lenient, {**scores, "test_accuracy": 0.92}, champion, "1", None, clearly)
    assert not refused.promote and refused.reason.startswith("significantly worse")


def test_a_slice_that_regressed_blocks_promotion_and_is_named():
    X = pd.DataFrame({"region": ["north"] * 60 + ["south"] * 60 + [None] * 10})
    y = np.array([0, 1] * 65)
    found = evidence.slices(X, pd.Series(y, name="churn"), ("region",), classification=True)
    assert [(s["feature"], s["value"], len(s["rows"])) for s in found] == [
        ("region", "<missing>", 10),
        ("region", "north", 60),
        ("region", "south", 60),
        ("churn (label)", "0", 65),
        ("churn (label)", "1", 65),
    ]
    truth = np.eye(2)[y]
    champion = evidence.slice_scores(found, evidence.slice_metrics(y, truth, [0, 1]))
    worse = truth.copy()
    worse[60:80] = worse[60:80, ::-1]  # wrong on 20 of the south rows
    challenger = evidence.slice_scores(found, evidence.slice_metrics(y, worse, [0, 1]))
    why = evidence.regressed_slice(challenger, champion, "test_accuracy", 50, 0.1)
    assert why.startswith("slice region = south (60 rows): test_accuracy 0.6667 vs champion 1")
    # Too few rows in the south to judge: the classes (65 rows each) still show the loss.
    assert evidence.regressed_slice(challenger, champion, "test_accuracy", 61, 0.1).startswith(
        "slice churn (label) = 0"
    )
    assert evidence.regressed_slice(challenger, champion, "test_accuracy", 66, 0.1) is None
