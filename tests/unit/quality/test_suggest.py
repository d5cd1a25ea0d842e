"""Suites suggested from good data accept that data and reject its typical corruptions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tasks.data.sources import load_frame
from tasks.quality.suggest import suggest_suite
from tasks.quality.validation import validate_frame


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


def tabular_frame() -> pd.DataFrame:
    """A table as users have it: breast-cancer measurements under names with units, spaces
    and non-ASCII letters, gaps, text categories, a boolean, an identifier, free text, dates,
    a constant column and a text label."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(11)
    rows = len(data)
    size = np.array(["small", "medium", "large"])[pd.qcut(data["mean area"], 3, labels=False)]
    symptom = rng.choice(["mild", "persistent", "no", "recurring", "severe"], rows)
    return pd.DataFrame(
        {
            "patient id": [f"P-{i:05d}" for i in range(rows)],
            "mean radius (mm)": data["mean radius"].mask(rng.random(rows) < 0.05),
            "Größe (cm²)": data["mean area"] / 100,
            "age, years": rng.integers(20, 90, rows),
            "size class": pd.Series(size).mask(rng.random(rows) < 0.04),
            "Region": rng.choice(["Nord", "Süd", "Ost", "West"], rows),
            "smoker": rng.random(rows) < 0.3,
            "notes": [
                f"patient reported {s} symptoms after {d} days of treatment"
                for s, d in zip(symptom, rng.integers(1, 30, rows), strict=True)
            ],
            "visit date": pd.date_range("2023-01-01", periods=rows, freq="D"),
            "clinic": "Zentrum Süd",
            "diagnosis": data["target"].map({0: "malignant", 1: "benign"}),
        }
    )


def via_csv(tmp_path, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a user's file holds it: written to CSV and loaded back (text as str)."""
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return load_frame(str(path))


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    frame = tabular_frame()
    return frame, suite_file(tmp_path_factory.mktemp("tabular"), frame, "patients", "diagnosis")


def test_suite_meta_names_feature_types_task_and_why_columns_are_left_out(tabular):
    _, path = tabular
    suite = json.loads(path.read_text())
    assert suite["meta"]["task"] == "classification"
    types = suite["meta"]["features"]
    assert types["numeric"] == ["mean radius (mm)", "Größe (cm²)", "age, years"]
    assert types["categorical"] == ["size class", "Region", "smoker"]
    reasons = types["excluded"]
    assert list(reasons) == ["patient id", "notes", "visit date", "clinic"]
    for column, word in zip(reasons, ["identifier", "free text", "date", "constant"], strict=True):
        assert word in reasons[column] and f"{column}: {reasons[column]}" in suite["meta"]["notes"]
    # Left-out columns: present, with their nulls, and no value set (an identifier's is huge).
    checked = {e["type"] for e in suite["expectations"] if e["kwargs"].get("column") in reasons}
    assert checked == {"expect_column_values_to_not_be_null"}


def test_a_row_index_exported_with_the_table_is_left_out_of_the_suites_features(tmp_path):
    """A table sorted by its label, with its row numbers as pandas (`Unnamed: 0`), R
    (`rownames`) and a database (`index`) export them: a reviewer reads why they are out."""
    sorted_rows = mixed_frame().sort_values("label", ignore_index=True)
    frame = sorted_rows.assign(rownames=np.arange(1, 401), index=np.arange(400))
    frame.insert(0, "Unnamed: 0", np.arange(400))
    frame = via_csv(tmp_path, frame)
    suite = suggest_suite(frame, "churn", "label")
    types = suite["meta"]["features"]
    assert types["excluded"] == {
        "Unnamed: 0": "row index (0..399, one per row)",
        "rownames": "row index (1..400, one per row)",
        "index": "row index (0..399, one per row)",
    }
    assert types["numeric"] == ["amount", "visits"]
    assert "rownames: row index (1..400, one per row)" in suite["meta"]["notes"]


def test_suite_accepts_its_table_in_memory_and_read_back_from_csv(tmp_path, tabular):
    frame, path = tabular
    for data in (frame, via_csv(tmp_path, frame)):
        report = validate_frame(data, path)
        assert report.success, report.summary()


def test_a_few_unseen_categories_pass_and_a_column_of_new_ones_fails(tmp_path, tabular):
    frame, path = tabular
    some = frame.copy()
    some.loc[some.index[:20], "Region"] = "Mitte"  # a new region: the model's unknown bucket
    assert validate_frame(via_csv(tmp_path, some), path).success

    renamed = frame.assign(
        Region=frame["Region"].map({"Nord": "N", "Süd": "S", "Ost": "O", "West": "W"})
    )
    report = validate_frame(via_csv(tmp_path, renamed), path)
    assert not report.success
    assert (
        "Region: expect_column_values_to_be_in_set: every value is new: ['N', 'O', 'S', 'W'] "
        "(the reference data held ['Nord', 'Ost', 'Süd', 'West'])"
    ) in report.summary()


@pytest.mark.parametrize(
    ("column", "change", "words"),
    [
        ("mean radius (mm)", lambda v: v.map("{:.1f} mm".format), "holds text, expected numbers"),
        ("size class", lambda v: v.map({"small": 0, "medium": 1, "large": 2}), "holds numbers"),
    ],
    ids=["numbers now text", "text now numbers"],
)
def test_a_column_whose_type_changed_is_rejected_by_name(tmp_path, tabular, column, change, words):
    frame, path = tabular
    report = validate_frame(
        via_csv(tmp_path, frame.assign(**{column: change(frame[column])})), path
    )
    assert not report.success
    line = next(f.describe() for f in report.failures if f.column == column and words in f.detail)
    assert line.startswith(f"{column}: expect_column_values_to_be_")


def test_a_numeric_label_with_many_values_is_a_regression_target_without_a_range(tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    path = suite_file(tmp_path, frame, "diabetes", "target")
    suite = json.loads(path.read_text())
    assert suite["meta"]["task"] == "regression"
    assert {e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == "target"} == {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_type_list",
    }
    beyond = frame.assign(target=frame["target"] * 3)  # new targets, not bad data
    assert validate_frame(beyond, path).success
    text = frame.assign(target=frame["target"].map("{:.0f} units".format))
    assert "target: expect_column_values_to_be_in_type_list" in validate_frame(text, path).summary()


@pytest.mark.parametrize(
    ("labels", "task", "words"),
    [
        (["stay"] * 400, None, "target column 'label' has one class"),
        ([None] * 400, None, "target column 'label' has no values"),
        (["churn", "stay"] * 200, "regression", "target column 'label' is not numeric"),
    ],
)
def test_a_label_that_cannot_be_learned_is_refused_in_one_line(labels, task, words):
    from tasks.data.features import FeatureError

    frame = mixed_frame().assign(label=labels)
    with pytest.raises(FeatureError, match=words) as refused:
        suggest_suite(frame, "churn", "label", task)
    assert "\n" not in str(refused.value)
