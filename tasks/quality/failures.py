"""What a failed expectation means, in words a user acts on: the column, the rule, how many
rows broke it and examples of their values (Great Expectations' results, read as plain data)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

_SAMPLE_SIZE = 5
TEXT_TYPE = "str"  # how GX's pandas type checks name text columns (see tasks.quality.suggest)


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation, with the row-level detail a person needs to find the rows."""

    expectation: str
    column: str | None
    detail: str
    unexpected_count: int | None = None
    element_count: int | None = None
    sample_values: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        where = self.column if self.column is not None else "table"
        return f"{where}: {self.expectation}: {self.detail}"


def merge_missing_columns(failures: list[ExpectationFailure]) -> list[ExpectationFailure]:
    """One line per missing column instead of one per expectation on it; table checks first."""
    missing: dict[str, int] = {}
    kept = []
    for failure in failures:
        if failure.column is not None and failure.detail == "column is missing":
            missing[failure.column] = missing.get(failure.column, 0) + 1
        else:
            kept.append(failure)
    kept += [
        ExpectationFailure(
            expectation=f"{count} column expectation{'s' if count > 1 else ''}",
            column=column,
            detail="column is missing",
        )
        for column, count in missing.items()
    ]
    return sorted(kept, key=lambda f: (f.column is not None, f.column or "", f.expectation))


def explain(frame: pd.DataFrame, kind: str, kwargs: dict, result: Any) -> ExpectationFailure:
    column = kwargs.get("column")
    observed = result.result or {}
    base = {"expectation": kind, "column": column, "element_count": len(frame)}
    if column is not None and column not in frame.columns:
        return ExpectationFailure(**base, detail="column is missing")
    if kind.startswith("expect_table_columns_to_match"):
        expected = list(kwargs.get("column_list") or kwargs.get("column_set") or [])
        actual = [str(c) for c in frame.columns]
        missing = [c for c in expected if c not in actual]
        extra = [c for c in actual if c not in expected]
        parts = [f"missing {short(missing)}"] if missing else []
        parts += [f"unexpected {short(extra)}"] if extra else []
        detail = "; ".join(parts) or "columns are out of order"
        return ExpectationFailure(**base, detail=detail)
    if kind == "expect_table_row_count_to_be_between":
        bounds = _bounds(kwargs)
        return ExpectationFailure(**base, detail=f"{len(frame)} rows, expected {bounds}")
    if kind in ("expect_column_min_to_be_between", "expect_column_max_to_be_between"):
        return _explain_extreme(frame[column], kind, kwargs, observed, base)
    if kind in ("expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"):
        return _explain_type(frame[column], kwargs, base)
    if kind.startswith("expect_column_distinct_values_to"):
        present = set(pd.unique(frame[column].dropna()).tolist())
        expected = set(kwargs.get("value_set") or [])
        missing, unseen = sorted(expected - present), sorted(present - expected, key=str)
        parts = []
        if missing:
            parts.append(f"values never seen: {short(missing)}")
        if unseen and kind != "expect_column_distinct_values_to_contain_set":
            parts.append(f"unexpected values: {short(unseen)}")
        return ExpectationFailure(**base, detail="; ".join(parts) or f"observed {observed}")
    if result.exception_info and result.exception_info.get("raised_exception"):
        message = str(result.exception_info.get("exception_message", "")).splitlines()[0]
        return ExpectationFailure(**base, detail=f"could not be evaluated: {message}")
    if kind == "expect_column_values_to_be_in_set":
        return _explain_unseen(frame[column], kwargs, observed, base)
    count = observed.get("unexpected_count")
    samples = plain_values(observed.get("partial_unexpected_list") or [])[:_SAMPLE_SIZE]
    if count is not None:
        detail = f"{count} of {len(frame)} rows unexpected"
        if samples:
            detail += f" (e.g. {short(samples)})"
        return ExpectationFailure(
            **base, detail=detail, unexpected_count=int(count), sample_values=samples
        )
    return ExpectationFailure(**base, detail=f"observed {observed.get('observed_value')!r}")


def _explain_extreme(
    values: pd.Series, kind: str, kwargs: dict, observed: dict, base: dict
) -> ExpectationFailure:
    """Min/max expectations judge one number; count the rows behind it only when they fail."""
    if observed.get("observed_value") is None:
        why = "has no values" if values.isna().all() else "is not numeric"
        return ExpectationFailure(**base, detail=f"could not be computed: the column {why}")
    numeric = pd.to_numeric(values, errors="coerce")
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    which = "min" if kind.endswith("min_to_be_between") else "max"
    outside = pd.Series(False, index=values.index)
    if which == "min" and low is not None:
        outside |= numeric < low
    if which == "max" and high is not None:
        outside |= numeric > high
    bound = f"below {_number(low)}" if which == "min" else f"above {_number(high)}"
    samples = plain_values(numeric[outside].head(_SAMPLE_SIZE).tolist())
    extreme = _number(plain_values([observed["observed_value"]])[0])
    detail = (
        f"{which} is {extreme}, expected {_bounds(kwargs)}; "
        f"{int(outside.sum())} of {len(values)} rows {bound}"
    )
    if samples:
        detail += f" (e.g. {short(samples)})"
    return ExpectationFailure(
        **base, detail=detail, unexpected_count=int(outside.sum()), sample_values=samples
    )


def _explain_type(values: pd.Series, kwargs: dict, base: dict) -> ExpectationFailure:
    """Text where numbers were, or numbers (or anything else) where text was: how many rows
    and a few of them."""
    if kwargs.get("type_") == TEXT_TYPE:
        wrong = values.notna() & ~values.map(lambda v: isinstance(v, str)).astype(bool)
        numbers = values[wrong].map(pd.api.types.is_number).all()
        held, wanted, expected = "numbers" if numbers else "other values", "text", "text"
    else:
        wrong = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        held, wanted = "text", "numbers"
        expected = f"one of {short(kwargs.get('type_list') or [])}"
    detail = f"type is {values.dtype}, expected {expected}"
    samples = plain_values(values[wrong].head(_SAMPLE_SIZE).tolist())
    if samples:
        detail = (
            f"holds {held}, expected {wanted}: {detail}; {int(wrong.sum())} of {len(values)} "
            f"rows are not {wanted} (e.g. {short(samples)})"
        )
    return ExpectationFailure(
        **base, detail=detail, unexpected_count=int(wrong.sum()) or None, sample_values=samples
    )


def _explain_unseen(
    values: pd.Series, kwargs: dict, observed: dict, base: dict
) -> ExpectationFailure:
    """Values the reference data never held: how many rows, which values, and whether any
    value seen before is left at all."""
    count = int(observed.get("unexpected_count") or 0)
    unseen = set(plain_values(observed.get("partial_unexpected_list") or []))
    samples = sorted(unseen, key=str)[:_SAMPLE_SIZE]
    if count and count == int(values.notna().sum()):
        known = kwargs.get("value_set") or []
        detail = f"every value is new: {short(samples)} (the reference data held {short(known)})"
    else:
        detail = (
            f"{count} of {len(values)} rows hold values never seen in the reference data "
            f"(e.g. {short(samples)})"
        )
        if kwargs.get("mostly") is not None:
            detail += f"; at most {1 - kwargs['mostly']:.0%} of the rows with a value may"
    return ExpectationFailure(**base, detail=detail, unexpected_count=count, sample_values=samples)


def _bounds(kwargs: dict) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        return f"between {_number(low)} and {_number(high)}"
    return f"at least {_number(low)}" if low is not None else f"at most {_number(high)}"


def plain_values(values: list) -> list:
    """JSON-safe scalars (numpy numbers and NaN become plain Python values)."""
    scalars = [value.item() if hasattr(value, "item") else value for value in values]
    return [None if isinstance(v, float) and math.isnan(v) else v for v in scalars]


def _number(value: Any) -> str:
    """255.0 reads as 255; strings keep their quotes so that '7' and 7 differ."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def short(values: list, limit: int = 8) -> str:
    shown = ", ".join(_number(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
