"""Feature types, the task a label implies, and the label's refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.data.features import (
    FeatureError,
    FeatureTypes,
    ModelInputs,
    check_features,
    check_label,
    check_sweepable,
    infer_task,
    infer_types,
    resolve_types,
)


def table(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer id": np.arange(rows) + 5000,
            "order key": [f"K-{i:05d}" for i in range(rows)],
            "weight (kg)": rng.normal(70, 10, rows),
            "Größe": rng.integers(150, 200, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "member": rng.choice([True, False], rows),
            "note": [f"the customer called about order number {i} twice" for i in range(rows)],
            "signed up": pd.date_range("2024-01-01", periods=rows).astype(str),
            "country": "NL",
            "empty": np.nan,
            "label": rng.choice(["yes", "no"], rows),
        }
    )


def test_types_name_numbers_categories_and_why_the_rest_are_left_out():
    types = infer_types(table(), "label")
    assert types.numeric == ("weight (kg)", "Größe")
    assert types.categorical == ("colour", "member")
    assert set(types.excluded) == {
        "customer id",
        "order key",
        "note",
        "signed up",
        "country",
        "empty",
    }
    assert types.excluded["customer id"].startswith("identifier")
    assert types.excluded["note"].startswith("free text")
    assert types.excluded["signed up"].startswith("date")
    assert types.excluded["country"] == "constant ('NL')"
    assert FeatureTypes.from_dict(types.to_dict()) == types
    assert "excluded: customer id (identifier" in types.describe()


def test_a_row_index_is_left_out_as_such_whatever_its_name():
    """Exported row numbers (pandas' `Unnamed: 0`, R's `rownames`, `index`), in any row order;
    not numbers that merely count up, nor a run that is not 0..n-1 or 1..n."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "Unnamed: 0": np.arange(60),
            "rownames": rng.permutation(np.arange(1, 61)),
            "index": np.arange(60)[::-1],
            "visits": np.arange(60) // 2,  # repeats: a feature
            "year": np.arange(1990, 2050),  # distinct, but no row index
            "label": rng.choice(["a", "b"], 60),
        }
    )
    types = infer_types(frame, "label")
    assert types.excluded == {
        "Unnamed: 0": "row index (0..59, one per row)",
        "rownames": "row index (1..60, one per row)",
        "index": "row index (0..59, one per row)",
    }
    assert types.numeric == ("visits", "year")
    assert "excluded: Unnamed: 0 (row index (0..59, one per row))" in types.describe()
    # Too few rows to tell a row index from a small feature.
    assert infer_types(frame.head(10), "label").numeric[:3] == ("Unnamed: 0", "rownames", "index")


def test_task_follows_the_label():
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([0, 1, 2] * 10)) == "classification"
    assert infer_task(pd.Series(np.linspace(0, 1, 100))) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"  # many whole numbers


def test_labels_that_cannot_be_learned_are_refused_by_name():
    with pytest.raises(FeatureError, match="'label' has no values"):
        check_label(pd.Series([np.nan] * 4, name="label"), "classification")
    with pytest.raises(FeatureError, match="'label' has one class"):
        check_label(pd.Series(["yes"] * 4, name="label"), "classification")
    with pytest.raises(FeatureError, match=r"not numeric.*--task classification"):
        check_label(pd.Series(["a", "b"], name="label"), "regression")
    mask = check_label(pd.Series(["a", None, "b"], name="label"), "classification")
    assert mask.tolist() == [True, False, True]


def test_exclude_and_type_changes_are_checked():
    frame = table()
    task, types = resolve_types(frame, "label", (None, None), "auto", ["Größe"])
    assert task == "classification" and "Größe" not in types.numeric
    assert types.excluded["Größe"] == "excluded by --exclude"
    with pytest.raises(FeatureError, match="'nope'"):
        resolve_types(frame, "label", (None, None), "auto", ["nope"])
    frame["weight (kg)"] = "heavy"
    with pytest.raises(FeatureError, match="'weight \\(kg\\)' was numeric"):
        check_features(types, frame)
    with pytest.raises(FeatureError, match="no column is left"):
        check_features(FeatureTypes((), (), {"a": "x"}), frame)


def test_a_sweep_is_refused_for_regression_and_mixed_types():
    types = FeatureTypes(("a",), ("b",))
    check_sweepable(ModelInputs("classification", FeatureTypes(("a",), ()), False))
    with pytest.raises(FeatureError, match="regression job"):
        check_sweepable(ModelInputs("regression", types, True))
    with pytest.raises(FeatureError, match="mixed-type job"):
        check_sweepable(ModelInputs("classification", types, True))
