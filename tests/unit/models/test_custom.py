"""A user's own code as a candidate: the function in a file of theirs gets the job's spec, and
what it returns is fitted as the built-in families are, or refused with a line naming it."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from tasks.data.splits import split_frame
from tasks.models.custom import CandidateEntry, CandidateError
from tasks.models.training import fit_users_candidate


@pytest.fixture(scope="module")
def splits(digits):
    return split_frame(digits, "target", 0.2, 0.2, seed=42)


def users_file(folder, stem: str, code: str):
    """The candidate file a user writes, as a real .py file (imported by its stem)."""
    path = folder / f"{stem}.py"
    path.write_text(textwrap.dedent(code))
    return path


def fit(entry: CandidateEntry, splits, tmp_path, epochs: int = 3):
    return fit_users_candidate(
        entry, splits.X_train, splits.y_train, splits.X_val, splits.y_val,
        epochs, 0, tmp_path / "checkpoints", "classification",
    )  # fmt: skip


def test_a_scikit_learn_function_gets_the_spec_and_its_estimator_is_fitted(splits, tmp_path):
    path = users_file(
        tmp_path,
        "users_forest_unit",
        """
        from sklearn.ensemble import RandomForestClassifier

        SEEN = []

        def forest(spec):
            SEEN.append(spec)
            return RandomForestClassifier(
                n_estimators=spec.params["trees"], random_state=spec.seed
            )
        """,
    )
    entry = CandidateEntry(entry=f"{path}:forest", name="my_forest", params={"trees": 25})
    fitted = fit(entry, splits, tmp_path)
    (spec,) = sys.modules["users_forest_unit"].SEEN
    assert spec.task == "classification" and spec.params == {"trees": 25}
    assert spec.n_inputs == 64 == len(spec.input_names) and spec.n_outputs == 10
    assert spec.classes == list(range(10)) and not spec.raw
    assert spec.input_names[:2] == ["pixel_0_0", "pixel_0_1"]
    assert type(fitted).__name__ == "RandomForestClassifier" and fitted.n_estimators == 25
    probabilities = fitted.predict_proba(splits.X_test)
    assert probabilities.shape == (len(splits.X_test), 10)
    assert (fitted.predict(splits.X_test) == splits.y_test).mean() > 0.85


def test_a_keras_function_with_params_is_compiled_fitted_and_predicts(splits, tmp_path):
    path = users_file(
        tmp_path,
        "users_dense_unit",
        """
        import keras

        def dense(spec):
            return keras.Sequential([
                keras.Input(shape=(spec.n_inputs,)),
                keras.layers.Rescaling(1 / 16),
                keras.layers.Dense(spec.params["units"], activation="relu"),
                keras.layers.Dense(spec.n_outputs, activation="softmax"),
            ])
        """,
    )
    entry = CandidateEntry(entry=f"{path}:dense", params={"units": 32})
    fitted = fit(entry, splits, tmp_path, epochs=3)
    assert type(fitted).__name__ == "KerasMLPClassifier" and fitted.builder == entry
    assert fitted.n_epochs_ == 3 and fitted.model_.layers[-2].units == 32  # the user's network
    assert list(fitted.classes_) == list(range(10))
    probabilities = fitted.predict_proba(splits.X_test)
    assert probabilities.shape == (len(splits.X_test), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    # Three epochs at Adam's default rate: it has learned, far from chance's 10%.
    assert (fitted.predict(splits.X_test) == splits.y_test).mean() > 0.4


def test_a_function_that_raises_is_a_candidate_error_naming_it_and_the_error(splits, tmp_path):
    path = users_file(
        tmp_path,
        "users_broken_unit",
        """
        def broken(spec):
            return {"units": 8}["layers"]
        """,
    )
    entry = CandidateEntry(entry=f"{path}:broken", name="half_done")
    with pytest.raises(CandidateError) as raised:
        fit(entry, splits, tmp_path)
    message = str(raised.value)
    assert message == f"candidate half_done ({path}:broken) failed: KeyError: 'layers'"


def test_a_function_returning_something_else_is_refused_saying_what_it_must_be(splits, tmp_path):
    path = users_file(
        tmp_path,
        "users_text_unit",
        """
        def text(spec):
            return "RandomForestClassifier"
        """,
    )
    entry = CandidateEntry(entry=f"{path}:text")
    with pytest.raises(CandidateError, match="not a Keras model or an unfitted scikit-learn") as e:
        fit(entry, splits, tmp_path)
    assert str(e.value).startswith(f"candidate text ({path}:text) returned str,")


def test_a_keras_classifier_without_one_probability_per_class_is_refused(splits, tmp_path):
    path = users_file(
        tmp_path,
        "users_no_softmax_unit",
        """
        import keras

        def one_output(spec):
            model = keras.Sequential([
                keras.Input(shape=(spec.n_inputs,)),
                keras.layers.Dense(1),
            ])
            model.compile(optimizer="adam", loss="mse")
            return model
        """,
    )
    # Compiled by the user, with no metric but its loss: it fits, then its outputs are refused.
    entry = CandidateEntry(entry=f"{path}:one_output", name="regressor_by_mistake")
    with pytest.raises(CandidateError) as raised:
        fit(entry, splits, tmp_path, epochs=2)
    message = str(raised.value)
    assert message.startswith(f"candidate regressor_by_mistake ({path}:one_output)")
    assert "\n" not in message
    assert message.endswith("predicts the wrong shape: (8, 1) for 8 rows, expected (8, 10)")
