"""A classifier's accuracy on a batch estimated before any label arrives, from its own
confidence (confidence-based performance estimation, CBPE): the expected share of rows it gets
right is the mean of the probability of the class it predicts.

That holds only while two things do: the probabilities are calibrated (of the rows predicted
with 0.8, eight in ten are right), and P(label | features) is what the model learned. It
follows a shift of the rows inside the training data's support (more of the classes the model
confuses); it cannot see a change of the concept, or rows far outside the training data, where
a model may be wrong with all its confidence (noised digits: an SVM's real accuracy fell to
0.55 while its confidence stayed at 0.91). A model's own probabilities are seldom calibrated
(the platform's SVM on digits: 0.87 confident, 0.97 right), so training fits a map from the
top probability to the share of rows right on the validation rows (isotonic, top-label), kept
with the version; a version without one is estimated from its probabilities as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.evaluation.evidence import LEVEL

# The version's map from confidence to accuracy, on its training run.
CALIBRATION_FILE = "monitor/calibration.json"
_Z = 1.959964  # the normal quantile of a two-sided 95% interval (LEVEL)


def fit_calibration(probabilities: np.ndarray, y_true, classes) -> dict[str, Any]:
    """Top-label calibration on held-out rows: the isotonic regression of whether the predicted
    class is right on its probability, kept as the points `np.interp` reads back."""
    from sklearn.isotonic import IsotonicRegression

    probabilities = np.asarray(probabilities, dtype=float)
    top = probabilities.max(axis=1)
    right = np.asarray(classes)[probabilities.argmax(axis=1)] == np.asarray(y_true)
    fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(top, right)
    return {
        "method": "isotonic, top-label",
        "rows": len(top),
        "confidence": [float(x) for x in fitted.X_thresholds_],
        "accuracy": [float(y) for y in fitted.y_thresholds_],
    }


@dataclass
class ConfidenceTally:
    """What the estimate keeps of a batch, partition by partition (three numbers whatever its
    rows): the rows, the sum of each row's chance to be right (its top probability, through
    the version's ``calibration`` when it keeps one), and of its Bernoulli variance."""

    calibration: dict[str, Any] | None = None
    rows: int = 0
    confidence: float = 0.0
    variance: float = 0.0

    def add(self, predictions: pd.DataFrame) -> None:
        """One partition's predictions (a registered model's output frame); a regressor's
        (no probability columns) add nothing."""
        columns = [c for c in predictions.columns if c.startswith("probability_")]
        if not columns:
            return
        top = predictions[columns].to_numpy(dtype=float).max(axis=1)
        if self.calibration:
            top = np.interp(top, self.calibration["confidence"], self.calibration["accuracy"])
        self.rows += len(top)
        self.confidence += float(top.sum())
        self.variance += float(np.sum(top * (1 - top)))

    def estimate(self) -> dict[str, Any] | None:
        """The estimated accuracy and the 95% interval of the batch's real one were the
        probabilities calibrated (a sum of Bernoulli draws); None for a regressor."""
        if not self.rows:
            return None
        accuracy = self.confidence / self.rows
        spread = _Z * math.sqrt(self.variance) / self.rows
        low, high = max(0.0, accuracy - spread), min(1.0, accuracy + spread)
        return {
            "accuracy": round(accuracy, 6),
            "accuracy_interval": [round(low, 6), round(high, 6)],
            "level": LEVEL,
            "method": self.method,
        }

    @property
    def method(self) -> str:
        if self.calibration:
            return f"confidence (CBPE), calibrated on {self.calibration['rows']} validation rows"
        return "confidence (CBPE), uncalibrated: the version keeps no calibration"
