"""Train, validation and test rows: stratified, disjoint, seeded."""

from __future__ import annotations

import pytest

from tasks.data import DataLoadError
from tasks.splits import split_frame


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
