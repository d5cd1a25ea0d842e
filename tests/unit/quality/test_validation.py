"""The shipped suites accept good data and name every way bad data breaks them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.data.sources import load_frame
from tasks.platform.settings import PROJECT_ROOT
from tasks.quality.validation import (
    DataValidationError,
    SuiteContractError,
    SuiteNotFoundError,
    ValidationReport,
    resolve_suite,
    suite_contract,
    validate_frame,
)

SUITES = PROJECT_ROOT / "expectations"


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_shipped_suites_accept_their_builtin_data(name):
    report = validate_frame(load_frame(f"builtin:{name}"), resolve_suite(name, SUITES))
    assert report.success, report.summary()
    assert report.failed == 0 and report.evaluated > 100


def test_validation_lets_go_of_the_data_it_checked():
    import gc
    import weakref

    frame = load_frame("builtin:digits")
    checked = weakref.ref(frame)
    validate_frame(frame, resolve_suite("digits", SUITES))
    del frame
    gc.collect()
    assert checked() is None  # GX's context outlives the call; the rows must not


REJECTED = ["nulls", "out_of_range", "text_in_numeric", "missing_class", "dropped_column"]


@pytest.mark.parametrize("kind", REJECTED)
def test_digits_suite_rejects_corruption_naming_column_and_expectation(bad_files, kind):
    path, words = bad_files[kind]
    report = validate_frame(load_frame(str(path)), SUITES / "digits.json")
    assert not report.success
    assert words in report.summary()
    assert "Data rejected by suite 'digits'" in str(DataValidationError(report))


def test_out_of_range_failure_counts_the_rows_behind_the_max(bad_files):
    report = validate_frame(load_frame(str(bad_files["out_of_range"][0])), SUITES / "digits.json")
    (failure,) = report.failures
    assert failure.column == "pixel_4_4"
    assert failure.unexpected_count == 2
    assert failure.sample_values == [255, 255]
    assert "max is 255, expected at most 16" in failure.detail


def test_missing_column_is_reported_once_not_per_expectation(bad_files):
    report = validate_frame(load_frame(str(bad_files["dropped_column"][0])), SUITES / "digits.json")
    lines = [f for f in report.failures if f.column == "pixel_7_7"]
    assert len(lines) == 1 and lines[0].detail == "column is missing"
    assert report.failed == 5  # the table's column set and four column expectations


def test_report_is_json_ready_and_carries_samples(bad_files):
    import json

    report = validate_frame(load_frame(str(bad_files["nulls"][0])), SUITES / "digits.json")
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["success"] is False
    assert payload["failures"][0]["unexpected_count"] == 3


def test_unreadable_report_says_why():
    report = ValidationReport.for_unreadable("digits", "x.csv is empty")
    assert report.summary() == "Data could not be read: x.csv is empty"


def test_suite_by_name_or_path(tmp_path):
    assert resolve_suite("digits", SUITES) == SUITES / "digits.json"
    copy = tmp_path / "mine.json"
    copy.write_text((SUITES / "digits.json").read_text())
    assert resolve_suite(str(copy), SUITES) == copy
    with pytest.raises(SuiteNotFoundError, match=r"no suite named 'iris'.*known: breast_cancer"):
        resolve_suite("iris", SUITES)
    with pytest.raises(SuiteNotFoundError, match="suite file not found"):
        resolve_suite(str(Path(tmp_path, "nope.json")), SUITES)


def small_table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = 200
    return pd.DataFrame(
        {
            "amount (€)": rng.normal(50, 10, rows),
            "store code": rng.integers(1, 6, rows),
            "channel": rng.choice(["web", "store"], rows),
            "order id": [f"o{i}" for i in range(rows)],
            "label": rng.choice(["churn", "stay"], rows),
        }
    )


def test_suite_contract_reads_back_what_suggest_wrote_and_a_reviewers_edit(tmp_path):
    from tasks.data.features import FeatureTypes, infer_types
    from tasks.quality.suggest import suggest_suite

    frame = small_table()
    suite = suggest_suite(frame, "shop", "label")
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(suite))
    assert suite_contract(path) == (infer_types(frame, "label"), "classification")

    # A reviewer reads the integer store codes as categories: the suite still takes its data.
    suite["meta"]["features"]["numeric"].remove("store code")
    suite["meta"]["features"]["categorical"].append("store code")
    path.write_text(json.dumps(suite))
    types, _ = suite_contract(path)
    assert types == FeatureTypes(("amount (€)",), ("channel", "store code"), types.excluded)
    assert validate_frame(frame, path).success


def test_hand_written_suites_declare_no_contract():
    assert suite_contract(SUITES / "digits.json") == (None, None)
    assert suite_contract(SUITES / "breast_cancer.json") == (None, None)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"task": "ranking"}, "meta.task is 'ranking'; use one of classification, regression"),
        ({"features": ["a", "b"]}, "meta.features must be {numeric: [columns]"),
        ({"features": {"numeric": "a"}}, "meta.features must be"),
        ({"features": {"numerics": ["a"]}}, "meta.features must be"),
        ({"features": {"numeric": ["a"], "excluded": {"a": "id"}}}, "lists ['a'] under more"),
    ],
)
def test_a_malformed_contract_is_refused_in_one_line_naming_the_suite(tmp_path, meta, words):
    path = tmp_path / "edited.json"
    path.write_text(json.dumps({"name": "edited", "meta": meta, "expectations": []}))
    with pytest.raises(SuiteContractError, match=r"suite \S*edited\.json: ") as refused:
        suite_contract(path)
    assert words in str(refused.value) and "\n" not in str(refused.value)
