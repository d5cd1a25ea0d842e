"""Leak screening: one numeric feature that alone predicts the label almost perfectly, where
the other features cannot, is suspected; an easy task or an honest table is not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.data.features import infer_types
from tasks.evaluation.leakage import LEAK_SCORE, suspected_leaks


def admissions(rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Weak honest features, a text one with gaps, and `days to discharge`: recorded after
    the outcome (negative for a death), so it gives the label away."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 95, rows)
    pressure = rng.normal(120, 15, rows)
    pressure[rng.random(rows) < 0.1] = np.nan
    ward = rng.choice(["east", "west", "north"], rows).astype(object)
    ward[rng.random(rows) < 0.05] = None
    risk = (age - 60) / 15 + np.nan_to_num(pressure - 120) / 30 + rng.normal(0, 1.5, rows)
    outcome = np.where(risk > 0.5, "died", "survived")
    days = np.where(outcome == "died", -rng.integers(1, 30, rows), rng.integers(1, 30, rows))
    return pd.DataFrame(
        {
            "age": age,
            "pressure": pressure,
            "ward": ward,
            "days to discharge": days,
            "outcome": outcome,
        }
    )


def screen(frame: pd.DataFrame, target: str, task: str = "classification", exclude=()):
    types = infer_types(frame.drop(columns=list(exclude)), target)
    X, y = frame[types.features], frame[target]
    half = len(frame) * 2 // 3
    return suspected_leaks(X[:half], y[:half], X[half:], y[half:], types.numeric, task, seed=0)


def test_a_feature_recorded_after_the_outcome_is_suspected_with_its_score():
    (leak,) = screen(admissions(), "outcome")
    assert leak.feature == "days to discharge" and leak.score >= LEAK_SCORE
    assert leak.as_dict() == {"feature": "days to discharge", "score": round(leak.score, 4)}
    assert leak.others is not None and leak.others < 0.9
    assert leak.describe().startswith("column 'days to discharge' alone predicts the label with")


def test_honest_features_and_an_easy_task_are_not_suspected():
    assert screen(admissions(), "outcome", exclude=["days to discharge"]) == ()
    # The label written as text too: the other features reach it, nothing is a leak.
    easy = admissions().assign(status=lambda f: f["outcome"].map({"died": "d", "survived": "s"}))
    assert screen(easy, "outcome") == ()


def test_a_regression_label_recorded_in_other_units_is_suspected():
    rng = np.random.default_rng(1)
    price = rng.gamma(3, 100, 1500)
    frame = pd.DataFrame(
        {
            "rooms": rng.integers(1, 6, 1500),
            "area": price / 4 + rng.normal(0, 60, 1500),
            "price in cents": (price * 100).round(),
            "price": price,
        }
    )
    (leak,) = screen(frame, "price", task="regression")
    assert leak.feature == "price in cents" and leak.metric == "R²" and leak.score >= LEAK_SCORE


def test_the_screen_reads_a_sample_of_large_sets_and_skips_tiny_ones():
    big = admissions(rows=30_000)
    (leak,) = screen(big, "outcome")
    assert leak.feature == "days to discharge"
    assert screen(admissions(rows=45), "outcome") == ()  # 15 held-out rows: too few to tell
