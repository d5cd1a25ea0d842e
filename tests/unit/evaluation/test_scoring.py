"""Metrics, model choice, cross-validation and plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

import tasks.evaluation.scoring
from tasks.evaluation.scoring import (
    METRICS,
    REGRESSION_METRICS,
    best_candidate,
    cross_validated,
    in_chunks,
    metrics_for,
    plot_confusion_matrix,
    plot_predicted_vs_actual,
    plot_residuals,
    plot_roc_curves,
    score_probabilities,
)
from tasks.models.baselines import build_baseline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_perfect_and_wrong_predictions_score_as_expected():
    classes = np.array([0, 1, 2])
    y = np.array([0, 1, 2, 2])
    perfect = np.eye(3)[y]
    assert set(score_probabilities(y, perfect, classes).values()) == {1.0}
    wrong = np.eye(3)[[1, 2, 0, 0]]
    worst = score_probabilities(y, wrong, classes)
    assert worst["test_accuracy"] == 0.0 and worst["test_roc_auc_ovr"] < 0.5


def test_binary_labels_use_the_positive_class_probability():
    y = np.array(["no", "yes", "yes", "no"])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    result = score_probabilities(y, probabilities, np.array(["no", "yes"]))
    assert result["test_accuracy"] == 0.75
    assert result["test_roc_auc_ovr"] == 0.75  # 3 of 4 (positive, negative) pairs ranked right


def test_best_candidate_takes_the_highest_metric_and_the_first_on_ties():
    scores = {"keras_mlp": {"a": 0.9}, "logistic_regression": {"a": 0.95}, "gb": {"a": 0.95}}
    assert best_candidate(scores, "a") == "logistic_regression"


def test_cross_validation_refits_a_fresh_copy(digits):
    estimator = build_baseline("logistic_regression", seed=0)
    result = cross_validated(
        estimator, digits.drop(columns="target"), digits["target"], folds=3, seed=0
    )
    assert 0.9 < result["cv_accuracy_mean"] <= 1.0 and result["cv_accuracy_std"] >= 0
    assert not hasattr(estimator, "classes_")  # the one passed in stays unfitted


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    return load_diabetes(return_X_y=True, as_frame=True)


def test_a_fitted_regressor_scores_in_the_targets_units(diabetes):
    X, y = diabetes
    model = build_baseline("ridge", 0, "regression").fit(X.iloc[:350], y.iloc[:350])
    scores, predictions = tasks.evaluation.scoring.test_scores(model, X.iloc[350:], y.iloc[350:])
    assert tuple(scores) == REGRESSION_METRICS == metrics_for("regression")
    assert metrics_for("classification") == METRICS
    assert scores["test_rmse"] >= scores["test_mae"] > 0 and 0 < scores["test_r2"] < 1
    assert predictions.shape == (len(X) - 350,) and predictions.dtype == float
    assert scores["test_rmse"] == pytest.approx(np.sqrt(np.mean((y.iloc[350:] - predictions) ** 2)))


def test_best_candidate_takes_the_lowest_error_and_the_first_on_ties():
    scores = {
        "keras_mlp": {"test_rmse": 3.2, "test_r2": 0.5},
        "ridge": {"test_rmse": 3.1, "test_r2": 0.4},
        "gradient_boosting": {"test_rmse": 3.1, "test_r2": 0.6},
    }
    assert best_candidate(scores, "test_rmse") == "ridge"
    assert best_candidate(scores, "test_r2") == "gradient_boosting"


def test_a_regressor_cross_validates_its_rmse_on_shuffled_folds(diabetes):
    X, y = diabetes
    estimator = build_baseline("ridge", seed=0, task="regression")
    result = cross_validated(estimator, X, y, folds=3, seed=0)
    assert set(result) == {"cv_rmse_mean", "cv_rmse_std"}
    assert 40 < result["cv_rmse_mean"] < 80 and result["cv_rmse_std"] >= 0  # y spans 25-346
    assert result == cross_validated(estimator, X, y, folds=3, seed=0)
    assert not hasattr(estimator, "n_features_in_")  # the one passed in stays unfitted


def test_unknown_baseline_is_named():
    with pytest.raises(ValueError, match="unknown classification baseline family 'random_forest'"):
        build_baseline("random_forest", seed=0)


def test_plots_are_png_images(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probabilities = rng.dirichlet(np.ones(3), 60)
    classes = np.array([0, 1, 2])
    paths = [
        plot_confusion_matrix(y, probabilities.argmax(1), classes, "cm", tmp_path / "cm.png"),
        plot_roc_curves(y, probabilities, classes, "roc", tmp_path / "roc.png"),
    ]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_regression_plots_are_png_images_of_a_seeded_sample_of_many_rows(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, 50_000)
    predictions = y + rng.normal(0, 5, len(y))
    for plot in (plot_predicted_vs_actual, plot_residuals):
        first = plot(y, predictions, "test set", tmp_path / f"{plot.__name__}.png")
        again = plot(y, predictions, "test set", tmp_path / f"{plot.__name__}-again.png")
        data = first.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        assert again.read_bytes() == data  # the same rows drawn each time
    few = plot_residuals(y[:40], predictions[:40], "few", tmp_path / "few.png")
    assert few.read_bytes().startswith(PNG_MAGIC)


def test_rows_are_scored_a_bounded_chunk_at_a_time_with_the_same_result(digits, monkeypatch):
    X, y = digits.drop(columns="target"), digits["target"]
    model = build_baseline("logistic_regression", 0).fit(X.iloc[:1000], y.iloc[:1000])
    seen = []
    scored = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda rows: seen.append(len(rows)) or scored(rows))
    monkeypatch.setattr(tasks.evaluation.scoring, "SCORING_ROWS", 300)
    chunked = in_chunks(model.predict_proba, X.iloc[1000:])
    assert seen == [300, 300, 197]
    np.testing.assert_array_equal(chunked, scored(X.iloc[1000:]))
    frames = in_chunks(lambda rows: pd.DataFrame({"row": rows.index}, index=rows.index), X)
    assert frames["row"].tolist() == list(X.index)  # frames keep their rows' index
