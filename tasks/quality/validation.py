"""Great Expectations: suites from expectations/, validation runs and their reports."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.errors import PlatformError
from tasks.data.features import TASKS, FeatureTypes

logger = logging.getLogger(__name__)


_SAMPLE_SIZE = 5
_SHOWN = 20  # failures listed in a message; the report keeps them all
TEXT_TYPE = "str"  # how GX's pandas type checks name text columns (see tasks.quality.suggest)


class SuiteNotFoundError(PlatformError):
    """No suite by that name in the suites folder, and no such file."""


class SuiteContractError(PlatformError):
    """A suite's meta.features or meta.task cannot be read as a data contract."""


class DataValidationError(PlatformError):
    """The data broke its suite; carries the report."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


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


@dataclass(frozen=True)
class ValidationReport:
    """What a suite said about one DataFrame."""

    suite: str
    success: bool
    evaluated: int
    failed: int
    rows: int
    failures: list[ExpectationFailure]

    def summary(self) -> str:
        if self.evaluated == 0:
            return f"Data could not be read: {self.failures[0].detail}"
        if self.success:
            return (
                f"Data passed suite '{self.suite}' "
                f"({self.evaluated} expectations, {self.rows} rows)"
            )
        lines = [
            f"Data rejected by suite '{self.suite}': {self.failed} of {self.evaluated} "
            f"expectations failed on {self.rows} rows"
        ]
        lines += [f"  - {failure.describe()}" for failure in self.failures[:_SHOWN]]
        if len(self.failures) > _SHOWN:
            lines.append(
                f"  ... and {len(self.failures) - _SHOWN} more (every one: `mlops validate --json`,"
                " or validation/result.json on a training run)"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        """The report a person reads: every failed expectation with counts and sample values."""
        lines = [
            f"# Validation report: suite `{self.suite}`",
            "",
            self.summary().splitlines()[0],
            "",
        ]
        if self.failures:
            lines += [
                "| column | expectation | detail | unexpected rows | sample values |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {f.column or '(table)'} | {f.expectation} | {f.detail} | "
                f"{'' if f.unexpected_count is None else f.unexpected_count} | "
                f"{_short(f.sample_values) if f.sample_values else ''} |"
                for f in self.failures
            ]
        return "\n".join(lines) + "\n"

    @classmethod
    def for_unreadable(cls, suite: str, error: str) -> ValidationReport:
        """The report of data that could not even be parsed into a table."""
        failure = ExpectationFailure(expectation="readable_table", column=None, detail=error)
        return cls(suite=suite, success=False, evaluated=0, failed=1, rows=0, failures=[failure])


def resolve_suite(name_or_path: str, suites_dir: Path) -> Path:
    """A suite name means ``<suites_dir>/<name>.json``; anything with a suffix is a path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".json" or candidate.parent != Path("."):
        if candidate.is_file():
            return candidate
        raise SuiteNotFoundError(f"suite file not found: {candidate}")
    path = suites_dir / f"{name_or_path}.json"
    if path.is_file():
        return path
    known = sorted(p.stem for p in suites_dir.glob("*.json"))
    raise SuiteNotFoundError(
        f"no suite named {name_or_path!r} in {suites_dir} (known: {', '.join(known) or 'none'}); "
        "pass --suite NAME or a path to a suite JSON file"
    )


def suite_contract(path: Path) -> tuple[FeatureTypes | None, str | None]:
    """The feature types and task a suite's ``meta`` declares (``mlops suite suggest`` writes
    them; a reviewer may edit them); None for each one a suite leaves out, as the hand-written
    suites do. A malformed one is refused, naming the suite file."""
    try:
        meta = json.loads(path.read_text()).get("meta") or {}
    except (json.JSONDecodeError, AttributeError) as exc:
        raise SuiteContractError(f"suite {path} is not a JSON suite object: {exc}") from exc
    task, spec = meta.get("task"), meta.get("features")
    if task is not None and task not in TASKS:
        raise SuiteContractError(
            f"suite {path}: meta.task is {task!r}; use one of {', '.join(TASKS)}"
        )
    if spec is None:
        return None, task
    kinds = {"numeric": list, "categorical": list, "excluded": dict}
    if not isinstance(spec, dict) or any(
        not isinstance(v, kinds.get(k, ())) for k, v in spec.items()
    ):
        shape = "{numeric: [columns], categorical: [columns], excluded: {column: why}}"
        raise SuiteContractError(f"suite {path}: meta.features must be {shape}, not {spec!r}")
    types = FeatureTypes.from_dict(spec)
    listed = [*types.numeric, *types.categorical, *types.excluded]
    twice = sorted({c for c in listed if listed.count(c) > 1})
    if twice:
        raise SuiteContractError(
            f"suite {path}: meta.features lists {_short(twice)} under more than one type"
        )
    return types, task


def validate_frame(
    frame: pd.DataFrame,
    suite_path: Path,
    ignore_columns: tuple[str, ...] = (),
    row_count: bool = True,
) -> ValidationReport:
    """Run a Great Expectations suite over a DataFrame and explain every failure.

    ``ignore_columns`` leaves columns out of the contract: the label, for data to predict on.
    ``row_count=False`` leaves out the table's row count: a part of a batch to score, which
    may have any number of rows (the count is a rule for training data).
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every batch under 1 GB (an md5 over pandas' row hashes, a large share of
    # the validation) for a batch marker nothing here reads; bigger ones it already leaves
    # unhashed. Our own sha256 of the rows is the snapshot's.
    pandas_execution_engine.HASH_THRESHOLD = 0

    spec = _without_columns(json.loads(suite_path.read_text()), ignore_columns)
    if not row_count:
        spec["expectations"] = [
            e for e in spec["expectations"] if not e["type"].startswith("expect_table_row_count")
        ]
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta")
        )
    )
    batch = (
        context.data_sources.add_pandas("frame")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all rows")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )
    try:
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    finally:
        # The context outlives this call (GX keeps it as the project's) and its data source
        # would keep the frame alive until the next validation.
        context.data_sources.delete("frame")
    failures = _merge_missing_columns(
        [
            _explain(frame, r.expectation_config.type, r.expectation_config.kwargs, r)
            for r in result.results
            if not r.success
        ]
    )
    report = ValidationReport(
        suite=suite.name,
        success=bool(result.success),
        evaluated=len(result.results),
        failed=sum(not r.success for r in result.results),
        rows=len(frame),
        failures=failures,
    )
    logger.info(report.summary().splitlines()[0])  # the detail goes to the error and the report
    return report


def _without_columns(spec: dict, ignored: tuple[str, ...]) -> dict:
    if not ignored:
        return spec
    kept = []
    for expectation in spec["expectations"]:
        kwargs = dict(expectation["kwargs"])
        if kwargs.get("column") in ignored:
            continue
        for key in ("column_set", "column_list"):
            if key in kwargs:
                kwargs[key] = [c for c in kwargs[key] if c not in ignored]
        kept.append({**expectation, "kwargs": kwargs})
    return {**spec, "expectations": kept}


def _merge_missing_columns(failures: list[ExpectationFailure]) -> list[ExpectationFailure]:
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


def _explain(frame: pd.DataFrame, kind: str, kwargs: dict, result: Any) -> ExpectationFailure:
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
        parts = [f"missing {_short(missing)}"] if missing else []
        parts += [f"unexpected {_short(extra)}"] if extra else []
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
            parts.append(f"values never seen: {_short(missing)}")
        if unseen and kind != "expect_column_distinct_values_to_contain_set":
            parts.append(f"unexpected values: {_short(unseen)}")
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
            detail += f" (e.g. {_short(samples)})"
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
        detail += f" (e.g. {_short(samples)})"
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
        expected = f"one of {_short(kwargs.get('type_list') or [])}"
    detail = f"type is {values.dtype}, expected {expected}"
    samples = plain_values(values[wrong].head(_SAMPLE_SIZE).tolist())
    if samples:
        detail = (
            f"holds {held}, expected {wanted}: {detail}; {int(wrong.sum())} of {len(values)} "
            f"rows are not {wanted} (e.g. {_short(samples)})"
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
        detail = f"every value is new: {_short(samples)} (the reference data held {_short(known)})"
    else:
        detail = (
            f"{count} of {len(values)} rows hold values never seen in the reference data "
            f"(e.g. {_short(samples)})"
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


def _short(values: list, limit: int = 8) -> str:
    shown = ", ".join(_number(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
