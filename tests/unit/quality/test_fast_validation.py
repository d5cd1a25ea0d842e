"""The shipped suites check ranges with column min/max (fast); they must reject exactly the rows
that Great Expectations' row-by-row range check rejects. Proven over generated frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from tasks.platform.settings import PROJECT_ROOT
from tasks.quality.validation import validate_frame

COLUMNS = ["pixel_0_0", "pixel_3_4", "pixel_7_7"]
LOW, HIGH = 0, 16

values = st.one_of(
    st.integers(-5, 25).map(float),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.just(float("nan")),
    st.sampled_from([LOW, HIGH, LOW - 1e-9, HIGH + 1e-9]),
)
frames = data_frames(
    columns=[column(name, elements=values, dtype=float) for name in COLUMNS],
    index=range_indexes(min_size=1, max_size=40),
).filter(lambda frame: frame.notna().any().all())  # all-null columns: see the last test


def shipped_range_rules() -> list[dict]:
    """The digits suite's own expectations on the generated columns."""
    suite = json.loads((PROJECT_ROOT / "expectations" / "digits.json").read_text())
    return [
        e
        for e in suite["expectations"]
        if e["kwargs"].get("column") in COLUMNS
        and e["type"] in ("expect_column_min_to_be_between", "expect_column_max_to_be_between")
    ]


def write_suite(path, expectations) -> None:
    path.write_text(json.dumps({"name": path.stem, "expectations": expectations}))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=frames)
def test_min_max_rules_reject_exactly_the_rows_a_row_level_check_rejects(tmp_path, frame):
    fast, row_level = tmp_path / "fast.json", tmp_path / "row_level.json"
    rules = shipped_range_rules()
    assert {r["kwargs"].get("min_value", r["kwargs"].get("max_value")) for r in rules} == {
        LOW,
        HIGH,
    }
    write_suite(fast, rules)
    write_suite(
        row_level,
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": name, "min_value": LOW, "max_value": HIGH},
            }
            for name in COLUMNS
        ],
    )
    quick, slow = validate_frame(frame, fast), validate_frame(frame, row_level)
    assert quick.success == slow.success
    outside = {name: frame[name].lt(LOW) | frame[name].gt(HIGH) for name in COLUMNS}
    for name in COLUMNS:
        counted = sum(f.unexpected_count for f in quick.failures if f.column == name)
        row_failures = [f for f in slow.failures if f.column == name]
        expected = int(outside[name].sum())
        assert counted == expected
        assert (row_failures[0].unexpected_count if row_failures else 0) == expected
        samples = [v for f in quick.failures if f.column == name for v in f.sample_values]
        assert set(samples) <= set(frame.loc[outside[name], name].tolist())


def test_an_all_null_column_fails_min_max_and_the_suite_says_why(tmp_path):
    """The one difference: a column with no values has no min or max, so the fast rules fail
    where the row-level check passes vacuously. The suite's not-null rule rejects it anyway."""
    frame = pd.DataFrame({name: [np.nan, np.nan] for name in COLUMNS})
    write_suite(tmp_path / "fast.json", shipped_range_rules())
    report = validate_frame(frame, tmp_path / "fast.json")
    assert not report.success
    assert {f.detail for f in report.failures} == {
        "could not be computed: the column has no values"
    }
