"""Great Expectations: suites from expectations/, validation runs and their reports."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.errors import PlatformError
from tasks.data.features import TASKS, FeatureTypes
from tasks.quality.failures import ExpectationFailure, explain, merge_missing_columns, short

logger = logging.getLogger(__name__)


_SHOWN = 20  # failures listed in a message; the report keeps them all


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
                f"{short(f.sample_values) if f.sample_values else ''} |"
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
            f"suite {path}: meta.features lists {short(twice)} under more than one type"
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
    failures = merge_missing_columns(
        [
            explain(frame, r.expectation_config.type, r.expectation_config.kwargs, r)
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
