"""Permutation importance: the features a model leans on come first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.evaluation import explanations
from tasks.models.baselines import build_baseline


def test_the_feature_the_label_depends_on_matters_and_noise_does_not(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal (kg)": rng.normal(size=600), "noise": rng.normal(size=600)})
    y = pd.Series(np.where(X["signal (kg)"] > 0, "up", "down"))
    model = build_baseline("logistic_regression", 0).fit(X[:400], y[:400])
    found = explanations.permutation_importance(model, X[400:], y[400:], "test_accuracy", 0)
    assert [f["feature"] for f in found] == ["signal (kg)", "noise"]
    signal, noise = found
    assert signal["importance"] > 0.3 and signal["interval"][0] > 0.2
    assert abs(noise["importance"]) < 0.05
    assert found == explanations.permutation_importance(
        model, X[400:], y[400:], "test_accuracy", 0
    )  # seeded
    assert explanations.plot_importances(found, "test_accuracy", "t", tmp_path / "a.png").exists()
    assert explanations.plot_pixel_map(found, "t", tmp_path / "b.png") is None  # not an image


def test_an_image_gets_its_importances_as_a_heat_map(digits, tmp_path):
    features = [{"feature": c, "importance": float(i)} for i, c in enumerate(digits.columns[:64])]
    assert explanations.plot_pixel_map(features, "digits", tmp_path / "map.png").exists()
