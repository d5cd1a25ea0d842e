"""A batch's accuracy estimated before its labels, from the model's confidence calibrated on
validation rows: right where P(label | features) holds, including a batch shifted inside the
training data towards the classes the model confuses most."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split

from tasks.evaluation import estimation
from tasks.models.baselines import build_baseline


@pytest.fixture(scope="module")
def rows(digits):
    """Digits split as training does: train, validation (the calibration's) and test rows."""
    X, y = digits.drop(columns="target"), digits["target"]
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.4, random_state=0, stratify=y
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.33, random_state=0, stratify=y_rest
    )
    return X_train, y_train, X_val, y_val, X_test, y_test.to_numpy()


def fitted(family: str, rows):
    X_train, y_train, X_val, y_val, *_ = rows
    model = build_baseline(family, seed=0).fit(X_train, y_train)
    return model, estimation.fit_calibration(model.predict_proba(X_val), y_val, model.classes_)


def estimate(probabilities: np.ndarray, classes, calibration=None) -> float:
    """What `mlops predict` reports of a batch with these probabilities."""
    frame = pd.DataFrame(probabilities, columns=[f"probability_{c}" for c in classes])
    tally = estimation.ConfidenceTally(calibration)
    for start in range(0, len(frame), 100):  # partition by partition, as predict adds them up
        tally.add(frame.iloc[start : start + 100])
    return tally.estimate()["accuracy"]


def test_the_estimate_follows_a_batch_shifted_towards_the_classes_the_model_confuses(rows):
    model, calibration = fitted("logistic_regression", rows)
    _, _, X_val, y_val, X_test, y_test = rows
    confused = confusion_matrix(y_val, model.predict(X_val))
    np.fill_diagonal(confused, 0)
    worst = np.argsort(confused.sum(axis=0) + confused.sum(axis=1))[-3:]
    probabilities = model.predict_proba(X_test)
    predicted = model.classes_[probabilities.argmax(axis=1)]
    # Rows the model calls one of its most confused classes: a shift of the features alone
    # (chosen by what the model sees), inside the training data; P(label | features) holds.
    shifted = np.isin(predicted, worst)
    real = {"all": np.mean(predicted == y_test), "shifted": np.mean((predicted == y_test)[shifted])}
    found = {
        "all": estimate(probabilities, model.classes_, calibration),
        "shifted": estimate(probabilities[shifted], model.classes_, calibration),
    }
    assert real["shifted"] < real["all"] - 0.01  # the shift costs accuracy
    assert found["shifted"] < found["all"]  # and the estimate sees it
    for batch in ("all", "shifted"):
        assert found[batch] == pytest.approx(real[batch], abs=0.02)


def test_calibration_corrects_a_model_whose_confidence_understates_it(rows):
    model, calibration = fitted("svm", rows)
    *_, X_test, y_test = rows
    probabilities = model.predict_proba(X_test)
    real = np.mean(model.classes_[probabilities.argmax(axis=1)] == y_test)
    assert estimate(probabilities, model.classes_) < real - 0.05  # its raw confidence
    assert estimate(probabilities, model.classes_, calibration) == pytest.approx(real, abs=0.02)
    assert calibration["rows"] == len(rows[3])


def test_a_regressor_has_no_estimate():
    tally = estimation.ConfidenceTally()
    tally.add(pd.DataFrame({"prediction": [1.5, 2.5]}))
    assert tally.estimate() is None
