"""A batch's performance estimated before its labels, from what the model learned of its
errors on validation rows (a classifier's calibrated confidence, a regressor's model of its
error): right where P(label | features) holds, including batches shifted inside the training
data towards the rows the model gets wrong most; judged against the test metric as labels are."""

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


def estimated(performance, predictions: pd.DataFrame, features: pd.DataFrame) -> dict | None:
    """What `mlops predict` reports of a batch: partition by partition, as it adds them up."""
    tally = estimation.Tally()
    for start in range(0, len(predictions), 100):
        rows = slice(start, start + 100)
        tally += estimation.tally(performance, predictions.iloc[rows], features.iloc[rows])
    return tally.estimate()


def estimate(probabilities: np.ndarray, classes, calibration=None) -> float:
    """The accuracy `mlops predict` estimates of a batch with these probabilities."""
    frame = pd.DataFrame(probabilities, columns=[f"probability_{c}" for c in classes])
    return estimated(calibration, frame, frame)["accuracy"]


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


def test_a_row_less_sure_than_any_validation_row_is_not_credited_with_their_accuracy():
    # The validation rows were all at least 0.7 sure, and 99% right at that.
    calibration = {"rows": 200, "confidence": [0.7, 0.9], "accuracy": [0.99, 1.0]}
    sure, unsure = [0.05] * 9 + [0.55], [0.4] + [0.6 / 9] * 9  # top probability 0.55, 0.4
    found = estimate(np.array([sure, unsure]), range(10), calibration)
    assert found == pytest.approx((0.1 + 0.89 * 0.45 / 0.6 + 0.1 + 0.89 * 0.3 / 0.6) / 2)


def test_a_regressor_without_a_loss_model_has_no_estimate():
    frame = pd.DataFrame({"prediction": [1.5, 2.5]})
    assert estimated(None, frame, frame) is None


def prices(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A table as users have one: a number, a text category, gaps; the label's noise grows
    with the size of the item, and is largest for the "used" ones."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0, 3, rows)
    state = rng.choice(["new", "used", "refurbished"], rows)
    age = rng.normal(5, 2, rows)
    age[rng.random(rows) < 0.05] = np.nan
    noise = rng.normal(size=rows) * (0.2 + size * np.where(state == "used", 1.5, 0.3))
    price = 10 * size - 0.5 * np.nan_to_num(age, nan=5) + noise
    return pd.DataFrame({"size": size, "state": state, "age": age}), price


@pytest.fixture(scope="module")
def regressor():
    """A plain regressor of the prices, and its loss model fitted on 2,000 validation rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    def encoded(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(state=frame["state"].map({"new": 0, "used": 1, "refurbished": 2}))

    X, y = prices(4000, seed=0)
    model = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(encoded(X), y)
    X_val, y_val = prices(2000, seed=1)
    loss = estimation.fit_loss_model(X_val, model.predict(encoded(X_val)), y_val, seed=0)
    return lambda frame: model.predict(encoded(frame)), loss


def test_the_estimated_error_follows_a_batch_of_the_rows_the_regressor_gets_least_right(
    regressor,
):
    predict, loss = regressor
    X, y = prices(3000, seed=2)
    predicted = predict(X)
    errors = y - predicted
    # Large used items: a shift of the features alone, inside the training data's support.
    batches = {"all": np.ones(len(X), bool), "large used": (X["size"] > 2).to_numpy()
               & (X["state"] == "used").to_numpy()}  # fmt: skip
    found = {}
    for name, rows in batches.items():
        frame = pd.DataFrame({"prediction": predicted[rows]})
        found[name] = estimated(loss, frame, X[rows].reset_index(drop=True))
        real_mae = np.mean(np.abs(errors[rows]))
        real_rmse = np.sqrt(np.mean(errors[rows] ** 2))
        assert found[name]["mae"] == pytest.approx(real_mae, rel=0.1)
        assert found[name]["rmse"] == pytest.approx(real_rmse, rel=0.1)
        low, high = found[name]["rmse_interval"]
        assert low < found[name]["rmse"] < high
    assert found["large used"]["mae"] > 2 * found["all"]["mae"]  # the shift costs, and is seen
    assert found["all"]["method"] == "direct loss estimation, fitted on 2000 validation rows"


def test_the_loss_model_reads_a_category_it_never_saw_and_a_missing_feature_as_gaps(regressor):
    predict, loss = regressor
    X, _ = prices(10, seed=3)
    odd = X.assign(state=["gifted"] * 10).drop(columns="age")
    frame = pd.DataFrame({"prediction": predict(X)})
    assert np.isfinite(estimated(loss, frame, odd)["mae"])


@pytest.mark.parametrize(
    ("accuracy", "interval", "dropped"),
    [(0.80, [0.75, 0.85], True), (0.95, [0.92, 0.98], False), (0.93, [0.85, 1.0], False)],
)
def test_an_estimate_is_a_drop_only_when_surely_worse_than_the_test_metric_by_the_tolerance(
    accuracy, interval, dropped
):
    test = {"test_accuracy": 0.96, "test_accuracy_low": 0.94, "test_accuracy_high": 0.98}
    estimate = {"accuracy": accuracy, "accuracy_interval": interval, "method": "confidence"}
    drop = estimation.judge(estimate, test, tolerance=0.02)
    assert drop.degraded is dropped and drop.estimated
    assert drop.describe().startswith("Estimated drop" if dropped else "Estimate held")
    assert estimation.judge(None, test, tolerance=0.02) is None


def calibrated_batch(rows: int, classes: int, shift: float, seed: int):
    """A well-calibrated classifier's probabilities and labels drawn from them; ``shift``
    makes the first class likelier (a batch shifted in what the model sees)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, classes)) * 1.5
    logits[:, 0] += shift
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (rng.random(rows)[:, None] > probabilities.cumsum(axis=1)).sum(axis=1)
    frame = pd.DataFrame(probabilities, columns=[f"probability_{c}" for c in range(classes)])
    return frame, np.minimum(labels, classes - 1)


@pytest.mark.parametrize(("classes", "shift"), [(3, 0.0), (4, 0.0), (4, 1.5)])
def test_the_macro_f1_of_a_calibrated_classifier_is_estimated_from_its_confidence(classes, shift):
    from sklearn.metrics import f1_score

    frame, labels = calibrated_batch(20_000, classes, shift, seed=classes)
    found = estimated(None, frame, frame)
    real = f1_score(labels, frame.to_numpy().argmax(axis=1), average="macro")
    assert found["f1_macro"] == pytest.approx(real, abs=0.02)
    low, high = found["f1_macro_interval"]
    assert low < found["f1_macro"] < high and high - low < 0.05
    assert set(estimation.values(found)) == {"accuracy", "f1_macro"}


def test_a_batch_tallied_in_halves_is_estimated_as_a_whole():
    frame, _ = calibrated_batch(5_000, 3, 0.5, seed=7)
    calibration = {"rows": 100, "confidence": [0.4, 0.9], "accuracy": [0.3, 0.95]}
    whole = estimation.tally(calibration, frame, frame).estimate()
    halves = [frame.iloc[:1234], frame.iloc[1234:]]
    summed = sum((estimation.tally(calibration, h, h) for h in halves), estimation.Tally())
    parts = summed.estimate()
    assert parts["method"] == whole["method"]
    for name in ("accuracy", "f1_macro"):
        assert parts[name] == pytest.approx(whole[name], abs=1e-6)
        assert parts[f"{name}_interval"] == pytest.approx(whole[f"{name}_interval"], abs=1e-6)
    assert whole["f1_macro"] != pytest.approx(whole["accuracy"])


def test_a_class_never_predicted_nor_expected_is_left_out_of_the_macro_f1():
    # Sure of class 0 or 1, never of class 2, which gets no probability: as scikit-learn's
    # macro over the labels present, the estimate averages classes 0 and 1 only.
    probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    frame = pd.DataFrame(probabilities, columns=["probability_a", "probability_b", "probability_c"])
    found = estimated(None, frame, frame)
    assert found["f1_macro"] == pytest.approx(1.0)
    assert found["accuracy"] == pytest.approx(1.0)
