"""Suite suggestion: a Great Expectations suite inferred from good reference data, written as
reviewable JSON for expectations/."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.data import features
from tasks.data.features import TASKS, FeatureError, FeatureTypes, Task
from tasks.quality.failures import TEXT_TYPE, plain_values

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
# Share of a categorical column's values (nulls aside) that must be ones the reference data
# held. A few unseen categories pass: the model reads them as one "unknown" category. A column
# whose values are mostly new (a renamed code list, columns shifted by one) fails.
CATEGORIES_SEEN = 0.5


def suggest_suite(
    frame: pd.DataFrame, name: str, target: str | None, task: Task | None = None
) -> dict[str, Any]:
    """A Great Expectations suite inferred from good reference data, as reviewable JSON.

    Its ``meta`` carries the data contract that training reads: ``features`` (the columns read
    as numbers, as categories, and the ones left out with why) and ``task`` (inferred from
    the label unless given); a reviewer may edit both. A label that cannot be learned for the
    task is refused (``FeatureError``, naming the column).

    Expectations: the columns and their order-free set; row count between half and a hundred
    times the reference; per column its nulls (none, or at most a little above the
    reference's rate). Per numeric feature its type and range (exact for whole numbers,
    widened by a tenth of the range for floats, never below zero for non-negative columns);
    per categorical feature its type (text stays text) and value set, of which at least
    ``CATEGORIES_SEEN`` of the values must be; excluded columns (identifiers, free text,
    dates, constants) nothing more, never a value set. The label: for classification its
    exact value set, every class required to appear; for regression numbers, with no range
    (a target beyond the reference's range is new data, not bad data).
    """
    if task is not None and task not in TASKS:
        raise FeatureError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    if task is not None and target is None:
        raise FeatureError(f"task {task!r} needs a label column: pass --target COLUMN")
    types = features.infer_types(frame, target)
    if target is not None:
        task = task or features.infer_task(frame[target])
        features.check_label(frame[target], task)
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
        values, label = frame[column], str(column)
        expectations.append(_null_expectation(label, values))
        if column == target:
            expectations += _type_expectations(label, values)
            if task == "classification":
                expectations += _value_set_expectations(label, values, required=True)
        elif label in types.numeric:
            expectations += _type_expectations(label, values)
            expectations += _range_expectations(label, values.dropna())
        elif label in types.categorical:
            expectations += _type_expectations(label, values)
            expectations += _value_set_expectations(label, values, required=False)
    return {
        "name": name,
        "meta": {
            "notes": _notes(frame, target, task, types),
            "task": task,
            "features": types.to_dict(),
        },
        "expectations": expectations,
    }


def write_suite(
    frame: pd.DataFrame, name: str, target: str | None, task: str | None, path: Path
) -> Path:
    """The suite suggested from ``frame`` written to ``path``, once it accepts the data it came
    from (else nothing is left written, and the rejection is raised)."""
    from tasks.quality import validation

    label = target if target in frame.columns else None
    suite = suggest_suite(frame, name, label, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2) + "\n")
    report = validation.validate_frame(frame, path)
    if not report.success:  # a suite must accept the data it came from
        path.unlink()
        raise validation.DataValidationError(report)
    return path


def _notes(frame: pd.DataFrame, target: str | None, task: str | None, types: FeatureTypes) -> str:
    label = f" (label: {target}, task: {task})" if target else ""
    left = "; ".join(f"{c}: {why}" for c, why in types.excluded.items()) or "none"
    return (
        f"Suggested by `mlops suite suggest` from {len(frame)} rows x {frame.shape[1]} columns"
        f"{label}. Features: {len(types.numeric)} numeric, {len(types.categorical)} "
        f"categorical; left out of the model (checked for presence and nulls only): {left}. "
        "Review the bounds, meta.features and meta.task before committing."
    )


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


def _type_expectations(column: str, values: pd.Series) -> list[dict[str, Any]]:
    """Numbers stay numbers and text stays text. GX 1.24 cannot name pandas 3's ``str`` dtype
    in a type list, but ``expect_column_values_to_be_of_type`` with ``str`` matches it (by
    the dtype's scalar type), as it does nullable ``string`` and object columns of strings.
    Booleans and pandas categories get none: their value set pins them."""
    if features.is_number(values):
        return [
            _expectation(
                "expect_column_values_to_be_in_type_list", column=column, type_list=NUMERIC_TYPES
            )
        ]
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        return [_expectation("expect_column_values_to_be_of_type", column=column, type_=TEXT_TYPE)]
    return []


def _value_set_expectations(column: str, values: pd.Series, required: bool) -> list[dict[str, Any]]:
    """The observed values: exact and every one required to appear for a label; for a
    categorical feature, most values must be among them."""
    seen = sorted(plain_values(pd.unique(values.dropna()).tolist()), key=str)
    if not required:
        return [
            _expectation(
                "expect_column_values_to_be_in_set",
                column=column,
                value_set=seen,
                mostly=CATEGORIES_SEEN,
            )
        ]
    return [
        _expectation("expect_column_values_to_be_in_set", column=column, value_set=seen),
        _expectation("expect_column_distinct_values_to_contain_set", column=column, value_set=seen),
    ]


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
