"""The shipped suites accept good data and name every way bad data breaks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.data import load_frame
from tasks.settings import PROJECT_ROOT
from tasks.validation import (
    DataValidationError,
    SuiteNotFoundError,
    ValidationReport,
    resolve_suite,
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
