"""The candidates of a job: each family of each task builds, with its preprocessing for
mixed-type features, and the baselines fit on a bounded sample."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.data.features import FeatureTypes
from tasks.models.baselines import SVM_MOST_ROWS
from tasks.models.training import build_candidate, candidates, fit_candidate


def test_every_candidate_family_builds(tmp_path):
    def families(*args, **kwargs) -> tuple[str, ...]:
        return tuple(entry.family for entry in candidates(*args, **kwargs))

    small, large = families(rows=1_000), families(rows=SVM_MOST_ROWS + 1)
    assert small == ("keras_mlp", "logistic_regression", "svm", "gradient_boosting")
    assert large == ("keras_mlp", "logistic_regression", "gradient_boosting")  # no kernel SVM
    assert families("regression") == ("keras_mlp", "ridge", "gradient_boosting")
    network = build_candidate("keras_mlp", epochs=7, seed=3, checkpoint_dir=tmp_path)
    assert (network.epochs, network.checkpoint_dir) == (7, tmp_path)
    assert build_candidate("gradient_boosting", epochs=7, seed=3).random_state == 3
    with pytest.raises(ValueError, match="choose one of logistic_regression, svm, gradient_b"):
        build_candidate("random_forest", epochs=7, seed=3)
    with pytest.raises(ValueError, match="choose one of ridge, gradient_boosting"):
        build_candidate("logistic_regression", epochs=7, seed=3, task="regression")


def test_mixed_type_candidates_carry_their_preprocessing():
    types = FeatureTypes(("weight (kg)",), ("colour",))
    network = build_candidate("keras_mlp", 5, 0, task="regression", types=types)
    assert type(network).__name__ == "KerasMLPRegressor" and network.encoder is not None
    boosting = build_candidate("gradient_boosting", 5, 0, types=types)
    assert list(boosting[-1].categorical_features) == [False, True]
    assert build_candidate("keras_mlp", 5, 0).encoder is None  # complete numbers: none


def test_baselines_fit_on_a_bounded_seeded_sample_of_the_training_rows(digits):
    X, y = digits.drop(columns="target"), digits["target"]
    fitted = [
        fit_candidate(build_candidate("logistic_regression", 1, 0), X, y, X, y, 300, seed=7)
        for _ in range(2)
    ]
    scaler = fitted[0].named_steps["standardscaler"]
    assert scaler.n_samples_seen_ == 300
    np.testing.assert_array_equal(scaler.mean_, fitted[1].named_steps["standardscaler"].mean_)
    whole = fit_candidate(build_candidate("logistic_regression", 1, 0), X, y, X, y, None)
    assert whole.named_steps["standardscaler"].n_samples_seen_ == len(X)


def test_the_kernel_svm_reads_digits_as_a_practitioner_s_does(digits):
    from sklearn.metrics import accuracy_score

    from tasks.data.splits import split_frame

    splits = split_frame(digits, "target", 0.2, 0.2, seed=42)
    svm = build_candidate("svm", 1, 0).fit(splits.X_train, splits.y_train)
    assert accuracy_score(splits.y_test, svm.predict(splits.X_test)) >= 0.98
    assert svm.predict_proba(splits.X_test).shape == (len(splits.y_test), 10)
    types = FeatureTypes(("weight (kg)",), ("colour",))
    assert type(build_candidate("svm", 1, 0, types=types)[0]).__name__ == "ColumnTransformer"


def test_gradient_boosting_fits_a_table_too_small_for_its_early_stopping(digits):
    """40 rows of 10 classes: the held-out tenth cannot hold every class, so the family fits
    its rounds out instead of failing the job."""
    from tasks.models.baselines import build_baseline
    from tasks.models.training import fit_candidate

    X, y = digits.drop(columns="target"), digits["target"]
    small = fit_candidate(build_baseline("gradient_boosting", 0), X[:40], y[:40], X[:5], y[:5])
    assert set(small.predict(X[40:80])) <= set(y[:40])
    larger = fit_candidate(build_baseline("gradient_boosting", 0), X[:400], y[:400], X[:5], y[:5])
    assert larger.n_iter_ < 200  # stopped early where it can
