"""Feature types: which columns of a table a model reads as numbers, which as categories, and
which it leaves out (with why); the task its label implies; and the label's own refusals.

Inferred once from reference data (``mlops suite suggest`` writes them into the suite, where a
reviewer reads and edits them) or, for a suite without them, from the training rows.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pandas as pd

from tasks.core.errors import PlatformError

logger = logging.getLogger(__name__)

Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = get_args(Task)

NUMERIC, CATEGORICAL = "numeric", "categorical"

# A label of whole numbers with at most this many distinct values is a set of classes.
CLASS_LIMIT = 20
# A text (or whole-number) column with at least this share of distinct values per row is an
# identifier, once a table has IDENTIFIER_ROWS rows to tell.
IDENTIFIER_SHARE = 0.95
IDENTIFIER_ROWS = 20
# Text whose values average at least this many characters, most with spaces, is free text.
FREE_TEXT_LENGTH = 30
# Values of a text column its kind is judged from (free text, dates): the first ones.
TEXT_SAMPLE = 10_000
_ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key|index)$", re.IGNORECASE)


class FeatureError(PlatformError):
    """The data cannot be learned from as given: the label or a feature column is unusable."""


@dataclass(frozen=True)
class FeatureTypes:
    """The columns a model reads, by type, in the table's order; the ones it leaves out."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def without(self, columns: list[str], why: str) -> FeatureTypes:
        """The same types with ``columns`` left out too (``mlops train --exclude``)."""
        dropped = set(columns)
        return FeatureTypes(
            tuple(c for c in self.numeric if c not in dropped),
            tuple(c for c in self.categorical if c not in dropped),
            {**self.excluded, **{c: why for c in columns if c not in self.excluded}},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> FeatureTypes:
        return cls(
            tuple(map(str, spec.get("numeric", []))),
            tuple(map(str, spec.get("categorical", []))),
            {str(k): str(v) for k, v in (spec.get("excluded") or {}).items()},
        )

    def describe(self) -> str:
        left = "; ".join(f"{c} ({why})" for c, why in self.excluded.items()) or "none"
        return f"{len(self.numeric)} numeric, {len(self.categorical)} categorical; excluded: {left}"


def is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def infer_types(frame: pd.DataFrame, target: str | None) -> FeatureTypes:
    """Each column but the label: numeric, categorical (text, booleans), or excluded with the
    reason (no values, one value, a row index, an identifier, free text, dates and times)."""
    numeric, categorical, excluded = [], [], {}
    for name in frame.columns:
        if name == target:
            continue
        kind = column_kind(frame[name])
        if kind == NUMERIC:
            numeric.append(str(name))
        elif kind == CATEGORICAL:
            categorical.append(str(name))
        else:
            excluded[str(name)] = kind
    return FeatureTypes(tuple(numeric), tuple(categorical), excluded)


def column_kind(values: pd.Series) -> str:
    """numeric, categorical, or the reason the column is not a feature."""
    present = values.dropna()
    if present.empty:
        return "no values"
    distinct = present.nunique()
    if distinct == 1:
        value = present.iloc[0]
        return f"constant ({(value.item() if hasattr(value, 'item') else value)!r})"
    if pd.api.types.is_datetime64_any_dtype(values) or isinstance(values.dtype, pd.PeriodDtype):
        return "date or time (not read as a feature)"
    unique_rows = len(present) >= IDENTIFIER_ROWS and distinct >= IDENTIFIER_SHARE * len(present)
    if pd.api.types.is_bool_dtype(values):
        return CATEGORICAL
    if is_number(values):
        whole = pd.api.types.is_integer_dtype(values)
        if whole and unique_rows and (run := _row_index(values, distinct)):
            return f"row index ({run}, one per row)"
        if whole and unique_rows and distinct == len(present) and _ID_NAME.search(str(values.name)):
            return "identifier (a distinct value per row)"
        return NUMERIC
    text = present.head(TEXT_SAMPLE).astype(str)
    if _looks_like_dates(text):
        return "date or time (not read as a feature)"
    if text.str.len().mean() >= FREE_TEXT_LENGTH and text.str.contains(" ").mean() > 0.5:
        return "free text (not read as a feature)"
    if unique_rows:
        return "identifier (a distinct value per row)"
    return CATEGORICAL


def _row_index(values: pd.Series, distinct: int) -> str | None:
    """The run "0..n-1" or "1..n" when a column of whole numbers holds exactly that, one value
    per row (an exported row index: `Unnamed: 0`, R's `rownames`, `index`); else None. A
    table sorted by its label turns such a column into the label's own order: a leak."""
    rows = len(values)
    if distinct != rows:
        return None
    low, high = int(values.min()), int(values.max())
    return f"{low}..{high}" if low in (0, 1) and high == low + rows - 1 else None


def _looks_like_dates(text: pd.Series) -> bool:
    """Most of a sample of the values parse as dates, and they have digits and separators."""
    sample = text.head(200)
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).mean() > 0.9:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.9)


def infer_task(labels: pd.Series) -> Task:
    """Classification for text, booleans and whole numbers with few distinct values;
    regression for other numbers."""
    present = labels.dropna()
    if not is_number(present):
        return "classification"
    whole = pd.api.types.is_integer_dtype(present) or bool((present % 1 == 0).all())
    return "classification" if whole and present.nunique() <= CLASS_LIMIT else "regression"


def check_label(labels: pd.Series, task: Task) -> pd.Series:
    """The label as a task can learn it; refuse one that cannot be (named), and say how many
    rows without a label are left out. Returns the mask of rows that have one."""
    name = labels.name
    present = labels.notna()
    if not present.any():
        raise FeatureError(f"target column {name!r} has no values (every row is empty)")
    values = labels[present]
    if task == "regression":
        if not is_number(values):
            shown = ", ".join(map(repr, values.astype(str).unique()[:3]))
            raise FeatureError(
                f"target column {name!r} is not numeric (e.g. {shown}): regression needs "
                "numbers; pass --task classification to learn its values as classes"
            )
        if values.nunique() < 2:
            raise FeatureError(f"target column {name!r} has one value: nothing to learn")
    elif values.nunique() < 2:
        raise FeatureError(
            f"target column {name!r} has one class ({values.iloc[0]!r}): a classifier needs "
            "at least two"
        )
    missing = int((~present).sum())
    if missing:
        logger.warning("%d rows have no %r: left out of training", missing, name)
    return present


def check_features(types: FeatureTypes, frame: pd.DataFrame) -> None:
    """A numeric feature must hold numbers, and a model needs at least one feature."""
    if not types.features:
        raise FeatureError(
            "no column is left to learn from: every one is excluded "
            f"({types.describe()}); check the suite's feature types or --exclude"
        )
    for name in types.numeric:
        if name in frame.columns and not is_number(frame[name]):
            sample = frame[name].dropna().astype(str).head(3).tolist()
            raise FeatureError(
                f"column {name!r} was numeric in the reference data but holds text now "
                f"(e.g. {', '.join(map(repr, sample))})"
            )


@dataclass(frozen=True)
class ModelInputs:
    """What a training job's models read: the task, the feature types, and whether the
    features need the preprocessing of mixed types (categories, or missing numbers)."""

    task: Task
    types: FeatureTypes
    encoded: bool

    @property
    def encoding(self) -> FeatureTypes | None:
        """The types the candidates' preprocessing is built from; None for plain numbers."""
        return self.types if self.encoded else None

    def as_params(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "numeric_features": len(self.types.numeric),
            "categorical_features": len(self.types.categorical),
            "excluded_features": ", ".join(self.types.excluded) or "none",
        }


def resolve_types(
    frame: pd.DataFrame,
    target: str,
    contract: tuple[FeatureTypes | None, str | None],
    task: str,
    exclude: list[str],
) -> tuple[Task, FeatureTypes]:
    """The task (``task``, unless auto; else the suite's; else inferred from the label) and
    the feature types (the suite's, else inferred from the rows), less ``exclude``."""
    suite_types, suite_task = contract
    chosen = task if task != "auto" else suite_task or infer_task(frame[target])
    if chosen not in TASKS:
        raise FeatureError(f"unknown task {chosen!r}: choose auto, {' or '.join(TASKS)}")
    types = suite_types or infer_types(frame, target)
    unknown = [c for c in exclude if c not in frame.columns or c == target]
    if unknown:
        raise FeatureError(
            f"--exclude names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not a feature column of the data"
        )
    return chosen, types.without(exclude, "excluded by --exclude")


def check_sweepable(inputs: ModelInputs) -> None:
    """A hyper-parameter sweep searches the classification families on complete numbers."""
    if inputs.task != "classification" or inputs.encoded:
        kind = "a regression" if inputs.task == "regression" else "a mixed-type"
        raise FeatureError(
            f"--sweep searches classifiers of complete numeric tables; this is {kind} job "
            "(categories or missing values): train it without --sweep"
        )
