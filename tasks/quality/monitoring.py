"""Monitoring of batch predictions: each batch, tallied partition by partition, against the
champion's training profile, and its predictions against the ones it made on its test rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasks.data.features import CATEGORICAL, Task
from tasks.quality import drift, tallies

PREDICTIONS_FILE = "monitor/predictions.json"
PREDICTION = "prediction"
# Version tags keeping the last check of a batch against the version (MLflow tag values are
# short: the drifted features are named up to this many characters).
TAG_PREFIX = "monitor."
# The version's tag naming the last batch it scored, as recorded (tasks/data/batches.py).
LAST_BATCH = f"{TAG_PREFIX}last_batch"
_NAMED = 500


def prediction_profile(
    outputs: np.ndarray, classes: np.ndarray | None, sample_rows: int, seed: int
) -> dict:
    """What a model predicted on its test rows, as a drift profile of one column: the counts
    per class of a classifier (``classes``: the labels of its probability columns), or the
    bins and a sample of a regressor's predictions."""
    task: Task = "regression" if classes is None else "classification"
    predicted = np.asarray(outputs) if classes is None else classes[np.argmax(outputs, axis=1)]
    frame = pd.DataFrame({PREDICTION: predicted})
    return drift.build_profile(frame, PREDICTION, sample_rows, seed, task=task)


@dataclass(frozen=True)
class Reference:
    """What a batch is compared with: the version's training profile and its test predictions'
    profile (None where the version keeps none, e.g. one registered before monitoring); and
    what estimates a batch's performance before labels (tasks/evaluation/estimation.py: a
    classifier's map from confidence to accuracy, a regressor's model of its error)."""

    model: str
    version: str
    features: dict | None
    predictions: dict | None
    performance: Any = None

    @property
    def name(self) -> str:
        return f"{self.model} v{self.version}"


@dataclass(frozen=True)
class BatchTally:
    """All a drift check keeps of a batch (bounded, whatever its rows): per profiled column,
    counts against the reference's bins or categories and a bounded sample."""

    features: dict[str, tallies.ColumnTally] = field(default_factory=dict)
    predictions: dict[str, tallies.ColumnTally] = field(default_factory=dict)

    def __add__(self, other: BatchTally) -> BatchTally:
        return BatchTally(
            _added(self.features, other.features), _added(self.predictions, other.predictions)
        )


def _added(
    total: dict[str, tallies.ColumnTally], part: dict[str, tallies.ColumnTally]
) -> dict[str, tallies.ColumnTally]:
    merged = dict(total)
    for name, counted in part.items():
        merged[name] = merged[name] + counted if name in merged else counted
    return merged


def tally_partition(
    reference: Reference, frame: pd.DataFrame, predictions: pd.DataFrame, seed: int, start: int
) -> BatchTally:
    """One partition's tally; its random draws depend on the seed and where it starts alone,
    so a batch tallies the same in any order and on any worker."""
    rng = np.random.default_rng([seed, start])
    features = tallies.tally(reference.features, frame, rng) if reference.features else {}
    predicted = (
        tallies.tally(reference.predictions, predictions[[PREDICTION]], rng)
        if reference.predictions
        else {}
    )
    return BatchTally(features, predicted)


@dataclass(frozen=True)
class BatchCheck:
    """A batch's verdict: its features' drift and its predictions' drift from the reference."""

    reference: Reference
    rows: int
    features: drift.DriftReport
    predictions: drift.DriftReport
    prediction_shares: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def detected(self) -> bool:
        return self.features.detected or self.predictions.detected

    def prediction_drift(self) -> dict[str, Any]:
        """`prediction_drift` of `mlops predict --json`: the drift report of the one column,
        and a classifier's share of rows per class in the reference and in the batch."""
        return {**self.predictions.to_dict(), "shares": self.prediction_shares}

    def summary(self) -> str:
        """What the user reads after the counts: the features' verdict, then the predictions'."""
        lines = [self.features.summary()]
        if self.predictions.checked:
            predicted = self.predictions.features[0]
            verdict = "drifted" if self.predictions.detected else "did not drift"
            shift = f" ({predicted.test} p={predicted.p_value:.2g}, PSI {predicted.psi:.2f})"
            lines.append(f"Predictions {verdict} from {self.reference.name}'s test rows{shift}")
        else:
            lines.append(f"Predictions not checked: {self.predictions.reason}")
        return "\n".join(lines)

    def tags(self, checked_at: str) -> dict[str, str]:
        """The version's tags of its last check."""
        named = ",".join(f.feature for f in self.features.drifted)
        return {
            f"{TAG_PREFIX}last_drift_at": checked_at,
            f"{TAG_PREFIX}last_drift_detected": str(self.detected).lower(),
            f"{TAG_PREFIX}last_feature_drift": str(self.features.detected).lower(),
            f"{TAG_PREFIX}last_prediction_drift": str(self.predictions.detected).lower(),
            f"{TAG_PREFIX}last_drifted_features": named[:_NAMED] or "none",
            f"{TAG_PREFIX}last_rows": str(self.rows),
        }

    def payload(self) -> dict[str, Any]:
        """The statistics an event carries: the verdicts, the drifted features' statistics and
        the prediction drift (a few kB, whatever the batch)."""
        return {
            "rows": self.rows,
            "detected": self.detected,
            "feature_drift": self.features.detected,
            "prediction_drift": self.predictions.detected,
            "summary": self.summary(),
            "drifted_features": [
                {"feature": f.feature, "psi": f.psi, "test": f.test, "p_value": f.p_value}
                for f in self.features.drifted
            ],
            "predictions": self.prediction_drift(),
        }

    def to_markdown(self) -> str:
        """The report on the flow run and the MLflow run of the prediction."""
        state = "**drift detected**" if self.detected else "no drift"
        lines = [
            f"# Monitoring: {self.rows} rows against {self.reference.name}: {state}\n",
            self.summary().replace("\n", "\n\n") + "\n",
            "## Features\n",
            self.features.to_markdown(plots=False).removeprefix("# Drift report\n"),
            "## Predictions\n",
        ]
        if self.prediction_shares:
            lines += ["| class | test rows | this batch |", "|---|---|---|"]
            before, after = self.prediction_shares["reference"], self.prediction_shares["batch"]
            lines += [
                f"| {label} | {before.get(label, 0):.1%} | {after.get(label, 0):.1%} |"
                for label in sorted(set(before) | set(after))
            ]
        else:
            lines.append(self.predictions.summary())
        return "\n".join(lines) + "\n"


def check_batch(
    reference: Reference, counted: BatchTally, rows: int, psi_threshold: float, alpha: float
) -> BatchCheck:
    """The batch's tally against the reference (each side unchecked where it keeps none)."""
    name = reference.name
    if reference.features is None:
        features = drift.DriftReport.not_checked(
            f"{name} keeps no training profile", psi_threshold, alpha
        )
    else:
        features = drift.judge(reference.features, counted.features, name, psi_threshold, alpha)
    if reference.predictions is None or PREDICTION not in counted.predictions:
        predictions = drift.DriftReport.not_checked(
            f"{name} keeps no distribution of its test predictions", psi_threshold, alpha
        )
        return BatchCheck(reference, rows, features, predictions)
    profile = reference.predictions
    predictions = drift.judge(
        profile, counted.predictions, f"{name} (test rows)", psi_threshold, alpha
    )
    spec = profile["columns"][PREDICTION]
    shares = {}
    if spec["kind"] == CATEGORICAL:
        shares = {
            "reference": _shares(pd.Series(spec["counts"], dtype="float64")),
            "batch": _shares(counted.predictions[PREDICTION].counts),
        }
    return BatchCheck(reference, rows, features, predictions, shares)


def _shares(counts: pd.Series) -> dict[str, float]:
    total = max(float(counts.sum()), 1.0)
    return {str(label): round(float(count) / total, 6) for label, count in counts.items()}
