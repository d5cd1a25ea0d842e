"""Labels that arrived for a recorded batch: joined with its predictions by key, the batch's
production metrics with 95% bootstrap intervals beside the version's test metrics, and
whether the version lost performance (the interval of the difference entirely beyond a
tolerance), which retrains it as drift does."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.errors import PlatformError
from tasks.data import batches
from tasks.evaluation import evidence
from tasks.evaluation.promotion import improvement

TAG_PREFIX = "feedback."
# The metric degradation is judged on: what a person reads first, of either task.
HEADLINE = {"classification": "accuracy", "regression": "rmse"}
_SHOWN = 5


class LabelError(PlatformError):
    """Labels that cannot be judged against a batch: no key or label column, a key twice, a
    label the model could never predict, none of the batch's rows."""


def as_text(values: pd.Series) -> pd.Series:
    """Keys (and class labels) as text, so that 17 read from one file matches 17.0 or "17"
    read from another: whole numbers lose their ".0", text stays as it is."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    elif values.dtype == object:  # mixed: each whole float as its integer
        values = values.map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    return values.astype("string")


def _examples(values) -> str:
    shown = [repr(v) for v in list(values)[:_SHOWN]]
    return ", ".join(shown) + (", ..." if len(values) > _SHOWN else "")


def check_labels(frame: pd.DataFrame, uri: str, key_column: str, target: str) -> pd.Series:
    """The labels of ``frame`` by key (text), refused in one line when a column is missing, a
    row has no key or no label, or a key appears twice."""
    for column, what in ((key_column, "the batch's key"), (target, "the model's label")):
        if column not in frame.columns:
            hint = " (name the key column with --id-column)" if column == key_column else ""
            raise LabelError(f"{uri} has no column {column!r}, {what}{hint}")
    keys = frame[key_column]
    for column, what in ((key_column, "key"), (target, "label")):
        if missing := int(frame[column].isna().sum()):
            raise LabelError(
                f"{missing} rows of {uri} have no {what} ({column!r}): leave them out until "
                "they have one"
            )
    text = as_text(keys)
    twice = text[text.duplicated()].unique()
    if len(twice):
        raise LabelError(
            f"{uri} gives {len(twice)} keys more than one label ({key_column!r}: "
            f"{_examples(twice)}): give each row's label once"
        )
    index = pd.Index(text.to_numpy(dtype=object), dtype=object, name="key")  # hashed lookups
    return pd.Series(frame[target].to_numpy(), index=index, name=target)


def _classes(part: pd.DataFrame) -> np.ndarray | None:
    """A classifier's labels, as text, from its probability columns; None for a regressor."""
    columns = [c for c in part.columns if c.startswith("probability_")]
    if not columns:
        return None
    names = pd.Series([c.removeprefix("probability_") for c in columns])
    numbers = pd.to_numeric(names, errors="coerce")
    return as_text(numbers if numbers.notna().all() else names).to_numpy()


def _labels_as(labels: pd.Series, classes: np.ndarray | None, uri: str) -> pd.Series:
    """The labels as the model's outputs read them (text of a class, or a number), refused
    when of the wrong type: a class the model could never predict, text for a regressor."""
    name = labels.name
    if classes is None:
        numbers = pd.to_numeric(labels, errors="coerce")
        if numbers.isna().any():
            text = labels[numbers.isna()].unique()
            raise LabelError(
                f"{uri}'s {name!r} holds text ({_examples(text)}), not numbers: the model is "
                "a regressor, its label is a number"
            )
        return numbers.astype(float)
    text = as_text(labels)
    unknown = sorted(set(text) - set(classes))
    if unknown:
        raise LabelError(
            f"{uri}'s {name!r} holds labels the model never predicts ({_examples(unknown)}; "
            f"its classes: {', '.join(classes)}): is it the label column, of this model?"
        )
    return text


@dataclass(frozen=True)
class Joined:
    """The labelled rows of a batch: their labels, the model's outputs for them (class
    probabilities, or a regressor's predictions), and how the labels met the batch."""

    y_true: np.ndarray
    outputs: np.ndarray
    classes: np.ndarray | None
    matched: int
    unmatched: int
    duplicated: int
    batch_rows: int


def join(labels: pd.Series, parts: Iterator[pd.DataFrame], uri: str) -> Joined:
    """Each label with the prediction of its key, part by part (memory: the labels and the
    matched rows). A key the batch scored more than once is left out (which row the label
    is of cannot be told) and counted ``duplicated``; a label of no row, ``unmatched``."""
    keys, outputs, rows, classes = [], [], 0, None
    for index, part in enumerate(parts):
        if index == 0:
            classes = _classes(part)
            labels = _labels_as(labels, classes, uri)
        rows += len(part)
        found = as_text(part[batches.KEY]).to_numpy(dtype=object)
        hit = labels.index.get_indexer(found) >= 0
        scored = part.filter(like="probability_") if classes is not None else part["prediction"]
        keys.append(found[hit])
        outputs.append(scored.to_numpy(dtype=float)[hit])
    keys = pd.Series(np.concatenate(keys) if keys else np.array([], dtype=object), dtype=object)
    outputs = np.concatenate(outputs) if outputs else np.empty(0)
    times = keys.map(keys.value_counts())
    once = (times == 1).to_numpy()
    return Joined(
        y_true=labels.reindex(keys[once].to_numpy()).to_numpy(),
        outputs=outputs[once],
        classes=classes,
        matched=int(once.sum()),
        unmatched=len(labels) - keys.nunique(),
        duplicated=int(keys[~once].nunique()),
        batch_rows=rows,
    )


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    return {name.removeprefix("test_"): value for name, value in metrics.items()}


@dataclass(frozen=True)
class Degradation:
    """The production metric against the test metric: the difference as the promotion
    policy reads it (negative: worse; for an error, a share of the test value), its 95%
    interval, and whether all of it lies beyond ``tolerance``."""

    metric: str
    production: float
    reference: float | None
    difference: float | None
    interval: list[float] | None
    tolerance: float
    estimated: bool = False  # ``production`` estimated before labels, not measured

    @property
    def degraded(self) -> bool:
        return self.interval is not None and self.interval[1] < -self.tolerance

    def describe(self) -> str:
        if self.difference is None or self.interval is None:
            return f"Not judged: the version keeps no test {self.metric}"
        low, high = self.interval
        verdict = "Performance degraded" if self.degraded else "Performance held"
        if self.estimated:
            verdict = "Estimated drop" if self.degraded else "Estimate held"
        share = " (a share of the test value)" if self.metric == "rmse" else ""
        return (
            f"{verdict}: {self.metric} {self.production:.4f} against {self.reference:.4f} on "
            f"the test rows, difference {self.difference:+.4f}{share} (95% interval "
            f"{low:+.4f} to {high:+.4f}; degraded when wholly below -{self.tolerance:g})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "production": self.production,
            "reference": self.reference,
            "difference": self.difference,
            "difference_interval": self.interval,
            "tolerance": self.tolerance,
            "degraded": self.degraded,
            "estimated": self.estimated,
        }


def difference_interval(
    metric: str, production: tuple[float, list[float]], reference: tuple[float, list[float]]
) -> tuple[float, list[float]]:
    """The difference (`improvement`) of two metrics measured on different rows, and its 95%
    interval: each side's own interval moves it by some amount up and down; the two are
    independent, so their moves add in quadrature."""
    (p, (p_low, p_high)), (r, (r_low, r_high)) = production, reference
    point = improvement(metric, p, r)
    by_production = [improvement(metric, value, r) for value in (p_low, p_high)]
    by_reference = [improvement(metric, p, value) for value in (r_low, r_high)]
    down = math.hypot(point - min(by_production), point - min(by_reference))
    up = math.hypot(max(by_production) - point, max(by_reference) - point)
    return point, [point - down, point + up]


def reference_metrics(test_metrics: dict[str, float]) -> tuple[dict, dict[str, list[float]]]:
    """A version's test metrics (its run's: `test_<name>` and their `_low` / `_high` ends) by
    plain name, and the intervals of those that have both ends."""
    bounds = {n: v for n, v in test_metrics.items() if n.endswith(("_low", "_high"))}
    reference = _plain({n: v for n, v in test_metrics.items() if n not in bounds})
    intervals = {
        name: [bounds[f"test_{name}_low"], bounds[f"test_{name}_high"]]
        for name in reference
        if f"test_{name}_low" in bounds and f"test_{name}_high" in bounds
    }
    return reference, intervals


def judged(
    metric: str,
    production: float,
    interval: list[float],
    reference: dict[str, float],
    reference_intervals: dict[str, list[float]],
    tolerance: float,
    estimated: bool = False,
) -> Degradation:
    """A batch's ``metric`` (measured, or ``estimated``) against the test metric: unjudged
    when the version keeps none."""
    test = reference.get(metric)
    difference = between = None
    if test is not None:
        difference, between = difference_interval(
            f"test_{metric}",
            (production, interval),
            (test, reference_intervals.get(metric, [test, test])),
        )
    return Degradation(metric, production, test, difference, between, tolerance, estimated)


@dataclass(frozen=True)
class Feedback:
    """What the labels of a batch say of the version that scored it."""

    model: str
    version: str
    batch: str
    joined: Joined
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    reference: dict[str, float]
    reference_intervals: dict[str, list[float]]
    degradation: Degradation
    estimated: dict[str, Any] | None = None  # what predict estimated of the batch, if anything

    @property
    def degraded(self) -> bool:
        return self.degradation.degraded

    def as_dict(self) -> dict[str, Any]:
        joined = self.joined
        return {
            "model": self.model,
            "version": self.version,
            "batch": self.batch,
            "matched": joined.matched,
            "unmatched": joined.unmatched,
            "duplicated": joined.duplicated,
            "batch_rows": joined.batch_rows,
            "metrics": self.metrics,
            "metric_intervals": self.intervals,
            "reference_metrics": self.reference,
            "reference_intervals": self.reference_intervals,
            "degraded": self.degraded,
            "degradation": self.degradation.as_dict(),
            "estimated_metrics": self.estimated,
        }

    def counts(self) -> str:
        joined = self.joined
        return (
            f"Batch {self.batch} of {self.model} v{self.version}: {joined.matched} of its "
            f"{joined.batch_rows} rows labelled; {joined.unmatched} labels of no row, "
            f"{joined.duplicated} keys it scored more than once (left out)"
        )

    def tags(self, at: str) -> dict[str, str]:
        """The version's tags of its last labelled batch."""
        low, high = self.intervals[self.degradation.metric]
        return {
            f"{TAG_PREFIX}at": at,
            f"{TAG_PREFIX}batch": self.batch,
            f"{TAG_PREFIX}matched": str(self.joined.matched),
            f"{TAG_PREFIX}{self.degradation.metric}": f"{self.degradation.production:.6g}",
            f"{TAG_PREFIX}{self.degradation.metric}_interval": f"{low:.6g},{high:.6g}",
            f"{TAG_PREFIX}degraded": str(self.degraded).lower(),
        }

    def run_metrics(self) -> dict[str, float]:
        """The MLflow run's metrics: each production metric and its interval's ends, the
        headline difference and the rows matched."""
        found = dict(self.metrics)
        for name, (low, high) in self.intervals.items():
            found |= {f"{name}_low": low, f"{name}_high": high}
        if self.degradation.difference is not None:
            found[f"{self.degradation.metric}_difference"] = self.degradation.difference
        found |= {f"estimated_{name}": value for name, value in self.estimates().items()}
        return found | {"matched": self.joined.matched, "unmatched": self.joined.unmatched}

    def estimates(self) -> dict[str, float]:
        """The metrics predict estimated of the batch before its labels (none if it did not)."""
        found = self.estimated or {}
        return {name: found[name] for name in self.metrics if isinstance(found.get(name), float)}

    def payload(self) -> dict[str, Any]:
        """The statistics `mlops.performance.degraded` carries."""
        return {
            "batch": self.batch,
            "summary": self.degradation.describe(),
            **self.degradation.as_dict(),
            "matched": self.joined.matched,
            "metrics": self.metrics,
            "metric_intervals": self.intervals,
            "reference_metrics": self.reference,
        }

    def to_markdown(self) -> str:
        """The report on the flow run and on the MLflow run of the feedback."""
        state = "**degraded**" if self.degraded else "held"
        lines = [
            f"# Feedback: {self.model} v{self.version}, batch {self.batch}: {state}\n",
            self.counts() + "\n",
            self.degradation.describe() + "\n",
            "| metric | production (95% interval) | test rows (95% interval) | estimated |",
            "|---|---|---|---|",
        ]
        estimates = self.estimates()
        for name, value in self.metrics.items():
            low, high = self.intervals[name]
            test = self.reference.get(name)
            bounds = self.reference_intervals.get(name)
            shown = "-" if test is None else f"{test:.4f}"
            if test is not None and bounds:
                shown += f" ({bounds[0]:.4f}-{bounds[1]:.4f})"
            guess = f"{estimates[name]:.4f}" if name in estimates else "-"
            lines.append(f"| {name} | {value:.4f} ({low:.4f}-{high:.4f}) | {shown} | {guess} |")
        if estimates:
            lines.append(f"\nEstimated before labels, from its {self.estimated['method']}.")
        return "\n".join(lines) + "\n"


def _production_scores(joined: Joined, seed: int) -> tuple[dict, dict]:
    """The batch's metrics and their bootstrap intervals; a classifier's labelled rows of one
    class alone have no ROC AUC (nor macro scores worth reading): accuracy alone then."""
    rows = joined.matched
    score = evidence.scorer(joined.y_true, joined.outputs, joined.classes)
    try:
        score(np.arange(rows))
    except ValueError:
        score = evidence.slice_metrics(joined.y_true, joined.outputs, joined.classes)
    return score(np.arange(rows)), evidence.metric_intervals(score, rows, seed)


def assess(
    model: str,
    version: str,
    batch: str,
    joined: Joined,
    test_metrics: dict[str, float],
    tolerance: float,
    seed: int,
    estimated: dict[str, Any] | None = None,
) -> Feedback:
    """The batch's production metrics (95% bootstrap intervals) beside the version's test
    metrics (``test_metrics``: its run's, with their `_low` / `_high` ends) and what predict
    ``estimated`` of them, and the headline metric's difference judged against ``tolerance``."""
    scores, intervals = _production_scores(joined, seed)
    metrics, intervals = _plain(scores), _plain(intervals)
    reference, reference_intervals = reference_metrics(test_metrics)
    metric = HEADLINE["classification" if joined.classes is not None else "regression"]
    degradation = judged(
        metric, metrics[metric], intervals[metric], reference, reference_intervals, tolerance
    )
    return Feedback(
        model, version, batch, joined, metrics, intervals, reference, reference_intervals,
        degradation, estimated,
    )  # fmt: skip
