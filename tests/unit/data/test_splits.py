"""Train, validation and test rows: stratified, disjoint, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.data.sources import DataLoadError
from tasks.data.splits import split_frame


def test_split_is_stratified_disjoint_and_seeded(digits):
    splits = split_frame(digits, "target", test_size=0.2, validation_size=0.2, seed=7)
    assert splits.sizes() == {"rows_train": 1149, "rows_val": 288, "rows_test": 360}
    indexes = [set(splits.X_train.index), set(splits.X_val.index), set(splits.X_test.index)]
    assert sum(map(len, indexes)) == len(set().union(*indexes)) == len(digits)
    shares = splits.y_test.value_counts(normalize=True)
    assert (shares - digits["target"].value_counts(normalize=True)).abs().max() < 0.01
    again = split_frame(digits, "target", test_size=0.2, validation_size=0.2, seed=7)
    assert list(again.X_test.index) == list(splits.X_test.index)
    assert "target" not in splits.features


def test_split_names_a_missing_target_column(digits):
    with pytest.raises(DataLoadError, match="target column 'label' is not in the data"):
        split_frame(digits, "label", 0.2, 0.2, 0)


def numeric_target(rows: int, seed: int = 0) -> pd.DataFrame:
    """A skewed numeric target (prices, durations), with two features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    return pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "price": np.exp(x[:, 0] + rng.normal(size=rows))}
    )


def test_a_regression_split_spreads_the_target_like_the_whole():
    frame = numeric_target(1000)
    splits = split_frame(frame, "price", 0.2, 0.2, seed=3, task="regression")
    assert splits.sizes() == {"rows_train": 640, "rows_val": 160, "rows_test": 200}
    indexes = [set(splits.X_train.index), set(splits.X_val.index), set(splits.X_test.index)]
    assert len(set().union(*indexes)) == len(frame) and "price" not in splits.features
    shares = np.arange(1, 10) / 10
    edges = frame["price"].quantile(shares).to_numpy()
    for y in (splits.y_train, splits.y_val, splits.y_test):
        below = (y.to_numpy()[:, None] <= edges).mean(axis=0)  # the share under each decile
        assert np.abs(below - shares).max() <= 0.02
    again = split_frame(frame, "price", 0.2, 0.2, seed=3, task="regression")
    assert list(again.X_test.index) == list(splits.X_test.index)


@pytest.mark.parametrize("rows", [12, 30, 80])
def test_a_small_or_tied_regression_target_still_splits(rows):
    frame = numeric_target(rows)
    splits = split_frame(frame, "price", 0.2, 0.2, seed=0, task="regression")
    assert sum(splits.sizes().values()) == rows and min(splits.sizes().values()) >= 1
    frame["price"] = np.where(np.arange(rows) % 10 == 0, frame["price"], 0.0)  # mostly zeros
    tied = split_frame(frame, "price", 0.2, 0.2, seed=0, task="regression")
    assert sum(tied.sizes().values()) == rows


def test_a_continuous_target_split_as_classes_suggests_regression():
    with pytest.raises(DataLoadError, match=r"into stratified sets.*pass --task regression"):
        split_frame(numeric_target(200), "price", 0.2, 0.2, 0)


def test_classes_too_rare_to_split_are_not_sent_to_regression():
    frame = pd.DataFrame({"x": range(20), "label": ["a"] * 19 + ["b"]})
    with pytest.raises(DataLoadError, match="cannot split 'label' into stratified sets") as failed:
        split_frame(frame, "label", 0.2, 0.2, 0)
    assert "--task regression" not in str(failed.value)


def test_a_consuming_split_moves_the_rows_out_of_the_frame_unchanged(digits):
    frame = digits.assign(colour=pd.Series(["red", None, "blue"] * 599, dtype="str"))
    kept = split_frame(frame, "target", 0.2, 0.2, seed=5)
    moved = split_frame(frame.copy(), "target", 0.2, 0.2, seed=5, consume=True)
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        expected, actual = getattr(kept, name), getattr(moved, name)
        assert expected.equals(actual) and expected.index.equals(actual.index), name
    emptied = frame.copy()
    split_frame(emptied, "target", 0.2, 0.2, seed=5, consume=True)
    assert emptied.shape == (len(frame), 0)
