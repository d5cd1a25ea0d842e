"""Suite suggestion: a Great Expectations suite inferred from good reference data, written as
reviewable JSON for expectations/."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tasks.validation import plain_values

NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "Int64",
    "Float64",
]


_WIDEN = 0.1  # share of the observed range that float bounds are widened by


def suggest_suite(frame: pd.DataFrame, name: str, target: str | None) -> dict[str, Any]:
    """A Great Expectations suite inferred from good reference data, as reviewable JSON.

    Columns and their order-free set; row count between half and a hundred times the
    reference; per numeric column its type, nulls (none, or at most a little above the
    reference's rate) and range (exact for whole numbers, widened by a tenth of the range for
    floats, never below zero for non-negative columns); per categorical column (and the
    label) its value set, with every label required to appear.
    """
    rows = len(frame)
    expectations: list[dict[str, Any]] = [
        _expectation(
            "expect_table_columns_to_match_set",
            column_set=[str(c) for c in frame.columns],
            exact_match=True,
        ),
        _expectation(
            "expect_table_row_count_to_be_between",
            min_value=max(1, math.ceil(rows / 2)),
            max_value=rows * 100,
        ),
    ]
    for column in frame.columns:
        values = frame[column]
        expectations.append(_null_expectation(str(column), values))
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:
            expectations.append(
                _expectation(
                    "expect_column_values_to_be_in_type_list",
                    column=str(column),
                    type_list=NUMERIC_TYPES,
                )
            )
        if numeric and column != target:
            expectations += _range_expectations(str(column), values.dropna())
        else:
            categories = sorted(plain_values(pd.unique(values.dropna()).tolist()), key=str)
            # A text column's value set pins its type too; GX cannot name pandas 3's str dtype.
            expectations.append(
                _expectation(
                    "expect_column_values_to_be_in_set", column=str(column), value_set=categories
                )
            )
            if column == target:
                expectations.append(
                    _expectation(
                        "expect_column_distinct_values_to_contain_set",
                        column=str(column),
                        value_set=categories,
                    )
                )
    notes = (
        f"Suggested by `mlops suite suggest` from {rows} rows x {frame.shape[1]} columns"
        f"{f' (label: {target})' if target else ''}. Review the bounds before committing."
    )
    return {"name": name, "meta": {"notes": notes}, "expectations": expectations}


def _expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _null_expectation(column: str, values: pd.Series) -> dict[str, Any]:
    rate = float(values.isna().mean())
    if rate == 0:
        return _expectation("expect_column_values_to_not_be_null", column=column)
    allowed = min(1.0, rate * 1.5 + 0.01)  # a little above the reference's rate
    return _expectation(
        "expect_column_values_to_not_be_null", column=column, mostly=round(1 - allowed, 4)
    )


def _range_expectations(column: str, values: pd.Series) -> list[dict[str, Any]]:
    if values.empty:
        return []
    low, high = float(values.min()), float(values.max())
    if not np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0):
        margin = (high - low) * _WIDEN
        low = max(0.0, low - margin) if low >= 0 else low - margin
        high += margin
    low, high = (int(low), int(high)) if low.is_integer() and high.is_integer() else (low, high)
    return [
        _expectation("expect_column_min_to_be_between", column=column, min_value=low),
        _expectation("expect_column_max_to_be_between", column=column, max_value=high),
    ]
