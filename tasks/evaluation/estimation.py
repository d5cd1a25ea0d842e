"""A classifier's accuracy on a batch estimated before any label arrives, from its own
confidence (confidence-based performance estimation, CBPE): the expected share of rows it gets
right is the mean of the probability of the class it predicts.

That holds only while two things do: the probabilities are calibrated (of the rows predicted
with 0.8, eight in ten are right), and P(label | features) is what the model learned. It
follows a shift of the rows inside the training data's support (more of the classes the model
confuses); it cannot see a change of the concept, or rows far outside the training data, where
a model may be wrong with all its confidence (noised digits: an SVM's real accuracy fell to
0.55 while its confidence stayed at 0.91). The probabilities here are the model's own, not
recalibrated: a model that is over-confident on its test rows is as much over here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.evaluation.evidence import LEVEL

METHOD = "confidence (CBPE), uncalibrated probabilities"
_Z = 1.959964  # the normal quantile of a two-sided 95% interval (LEVEL)


@dataclass
class ConfidenceTally:
    """What the estimate keeps of a batch, partition by partition (three numbers whatever its
    rows): the rows, the sum of each row's top probability, and of its Bernoulli variance."""

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
            "method": METHOD,
        }
