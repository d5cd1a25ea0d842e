"""Labels joined with a recorded batch: the counts a user reads, the refusals, and when the
production metric is judged degraded against the test metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.evaluation import feedback
from tasks.evaluation.feedback import LabelError

URI = "labels.csv"
TEST = {"test_accuracy": 0.96, "test_accuracy_low": 0.94, "test_accuracy_high": 0.98}


def part(keys, predicted, classes=("0", "1", "2")) -> pd.DataFrame:
    """A recorded part: each row's key and the probabilities of its predicted class (0.9)."""
    probabilities = np.full((len(keys), len(classes)), 0.1 / (len(classes) - 1))
    probabilities[np.arange(len(keys)), predicted] = 0.9
    frame = pd.DataFrame(probabilities, columns=[f"probability_{c}" for c in classes])
    frame.insert(0, "prediction", predicted)
    frame.insert(0, "key", keys)
    return frame


def labels(keys, values, key="order_id", target="target") -> pd.Series:
    return feedback.check_labels(pd.DataFrame({key: keys, target: values}), URI, key, target)


def test_labels_join_by_key_whatever_type_the_file_gave_it_and_count_what_did_not_match():
    recorded = [part([1, 2, 3], [0, 1, 2]), part([4, 4, 5], [1, 1, 0])]
    # Keys read as text and floats from the labels file; 9 was never scored; 4 was scored twice.
    arrived = labels(["1", 2.0, 3, 4, 9], [0, 1, 1, 1, 2])
    joined = feedback.join(arrived, iter(recorded), URI)
    assert (joined.matched, joined.unmatched, joined.duplicated, joined.batch_rows) == (3, 1, 1, 6)
    assert list(joined.y_true) == ["0", "1", "1"]
    assert list(joined.outputs.argmax(axis=1)) == [0, 1, 2]


def test_labels_given_twice_are_refused_naming_the_key():
    with pytest.raises(LabelError, match=r"gives 1 keys more than one label \('order_id': '7'\)"):
        labels([7, 7, 8], [0, 1, 1])


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (pd.DataFrame({"id": [1], "target": [0]}), "has no column 'order_id', the batch's key"),
        (pd.DataFrame({"order_id": [1], "label": [0]}), "no column 'target', the model's label"),
        (pd.DataFrame({"order_id": [1, None], "target": [0, 1]}), "1 rows of labels.csv have no"),
        (pd.DataFrame({"order_id": [1, 2], "target": [0, None]}), "have no label ('target')"),
    ],
)  # fmt: skip
def test_labels_without_their_columns_or_values_are_refused(frame, words):
    with pytest.raises(LabelError) as refused:
        feedback.check_labels(frame, URI, "order_id", "target")
    assert words in str(refused.value)


def test_a_label_of_the_wrong_type_is_refused_with_the_models_classes():
    with pytest.raises(
        LabelError, match=r"labels the model never predicts \('seven'; its classes: 0, 1, 2\)"
    ):
        feedback.join(labels([1], ["seven"]), iter([part([1], [0])]), URI)
    regressed = pd.DataFrame({"key": [1], "prediction": [2.5]})
    with pytest.raises(LabelError, match=r"holds text \('high'\), not numbers"):
        feedback.join(labels([1], ["high"]), iter([regressed]), URI)


def judged(correct_share: float, rows: int = 400, test=TEST, tolerance=0.02):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, rows)
    right = rng.random(rows) < correct_share
    predicted = np.where(right, truth, (truth + 1) % 3)
    keys = list(range(rows))
    joined = feedback.join(labels(keys, truth), iter([part(keys, predicted)]), URI)
    return feedback.assess("digits", "3", "b", joined, test, tolerance, seed=0)


def test_a_batch_as_good_as_the_test_rows_holds_and_one_far_worse_is_degraded():
    held = judged(0.96)
    assert abs(held.metrics["accuracy"] - 0.96) < 0.03 and not held.degraded
    low, high = held.intervals["accuracy"]
    assert low < held.metrics["accuracy"] < high
    assert held.reference == {"accuracy": 0.96} and held.reference_intervals == {
        "accuracy": [0.94, 0.98]
    }
    worse = judged(0.67)
    assert worse.degraded and worse.degradation.interval[1] < -0.02
    assert worse.tags("2026-12-03T12:00:00+00:00")["feedback.degraded"] == "true"
    assert "Performance degraded: accuracy" in worse.degradation.describe()


def test_a_small_loss_within_the_tolerance_is_not_degraded():
    # 0.93 against 0.96: worse, but its interval reaches past -0.02 on 400 rows.
    assert not judged(0.93).degraded
    assert judged(0.93, tolerance=0.0, rows=4000).degraded


def test_the_difference_interval_widens_with_both_sides_uncertainty():
    point, (low, high) = feedback.difference_interval(
        "test_accuracy", (0.90, [0.88, 0.92]), (0.95, [0.95, 0.95])
    )
    assert point == pytest.approx(-0.05) and (low, high) == (
        pytest.approx(-0.07),
        pytest.approx(-0.03),
    )
    _, (wider_low, wider_high) = feedback.difference_interval(
        "test_accuracy", (0.90, [0.88, 0.92]), (0.95, [0.93, 0.97])
    )
    assert wider_low < low and wider_high > high
    # An error metric: a higher RMSE than the test's is a loss, as a share of the test value.
    point, (low, high) = feedback.difference_interval(
        "test_rmse", (1.2, [1.1, 1.3]), (1.0, [1.0, 1.0])
    )
    assert point == pytest.approx(-0.2) and high == pytest.approx(-0.1)


def test_a_regressors_batch_is_judged_on_its_rmse():
    keys = list(range(200))
    truth = np.linspace(0, 10, 200)
    recorded = pd.DataFrame({"key": keys, "prediction": truth + 2.0})  # off by 2 everywhere
    joined = feedback.join(labels(keys, truth), iter([recorded]), URI)
    found = feedback.assess("houses", "1", "b", joined, {"test_rmse": 0.5}, 0.02, seed=0)
    assert found.metrics["rmse"] == pytest.approx(2.0) and found.degraded
    assert found.as_dict()["degradation"]["metric"] == "rmse"
