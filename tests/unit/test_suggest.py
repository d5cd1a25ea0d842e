"""Suites suggested from good data accept that data and reject its typical corruptions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tasks.data import load_frame
from tasks.suggest import suggest_suite
from tasks.validation import validate_frame


def mixed_frame() -> pd.DataFrame:
    """Floats with some nulls, a text category, integer counts and a text label."""
    rng = np.random.default_rng(3)
    rows = 400
    amount = rng.normal(50, 10, rows)
    amount[rng.choice(rows, 12, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.integers(0, 30, rows),
            "channel": rng.choice(["web", "store", "phone"], rows),
            "label": rng.choice(["churn", "stay"], rows),
        }
    )


DATASETS = {
    "digits": (lambda: load_frame("builtin:digits"), "target", "pixel_3_3", "target"),
    "breast_cancer": (
        lambda: load_frame("builtin:breast_cancer"),
        "target",
        "mean radius",
        "target",
    ),
    "mixed": (mixed_frame, "label", "visits", "label"),
}


def corrupt(frame: pd.DataFrame, kind: str, numeric: str, label: str) -> pd.DataFrame:
    bad = frame.copy()
    if kind == "dropped_column":
        return bad.drop(columns=[numeric])
    if kind == "nulls":
        bad.loc[bad.index[:5], numeric] = np.nan
    elif kind == "out_of_range":
        bad.loc[bad.index[7], numeric] = frame[numeric].max() * 10 + 100
    elif kind == "unseen_label":
        bad[label] = bad[label].astype(object)
        bad.loc[bad.index[2], label] = "never-seen"
    elif kind == "text_in_numeric":
        bad[numeric] = bad[numeric].astype(object)
        bad.loc[bad.index[4], numeric] = "twelve"
    return bad


def suite_file(tmp_path, frame, name, target):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(suggest_suite(frame, name, target), indent=2))
    return path


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_suggested_suite_accepts_the_data_it_came_from(tmp_path, dataset):
    make, target, _, _ = DATASETS[dataset]
    frame = make()
    report = validate_frame(frame, suite_file(tmp_path, frame, dataset, target))
    assert report.success, report.summary()
    # ...and a shuffled copy of it: a suite is about values, not order.
    assert validate_frame(
        frame.sample(frac=1, random_state=0), tmp_path / f"{dataset}.json"
    ).success


@pytest.mark.parametrize(
    "kind", ["dropped_column", "nulls", "out_of_range", "unseen_label", "text_in_numeric"]
)
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_suggested_suite_rejects_typical_corruptions(tmp_path, dataset, kind):
    make, target, numeric, label = DATASETS[dataset]
    frame = make()
    path = suite_file(tmp_path, frame, dataset, target)
    column = label if kind == "unseen_label" else numeric
    report = validate_frame(corrupt(frame, kind, numeric, label), path)
    assert not report.success
    assert any(failure.column in (column, None) for failure in report.failures), report.summary()


def test_suggested_suite_is_reviewable_json_with_the_label_set():
    frame = mixed_frame()
    suite = suggest_suite(frame, "churn", "label")
    kinds = {(e["type"], e["kwargs"].get("column")) for e in suite["expectations"]}
    assert ("expect_column_distinct_values_to_contain_set", "label") in kinds
    assert ("expect_column_values_to_be_in_set", "channel") in kinds
    assert ("expect_column_min_to_be_between", "amount") in kinds
    nulls = [
        e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"]["column"] == "amount"
    ]
    assert 0.9 < nulls[0]["mostly"] < 0.97  # 3% nulls in the reference, a little slack
    rows = next(e for e in suite["expectations"] if e["type"].startswith("expect_table_row_count"))
    assert rows["kwargs"] == {"min_value": 200, "max_value": 40000}
    json.dumps(suite)  # plain JSON, nothing numpy-typed
