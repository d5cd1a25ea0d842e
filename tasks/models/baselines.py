"""scikit-learn candidates: the baselines every network has to beat."""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

from tasks.data.features import FeatureTypes, Task
from tasks.models.families import BASELINES
from tasks.models.preprocessing import one_hot_encoder, ordinal_encoder

# A kernel SVM's fit grows with the square of its rows: past this many it is no candidate.
SVM_MOST_ROWS = 10_000
# Gradient boosting's defaults (see build_baseline).
BOOSTING = {"max_iter": 200, "learning_rate": 0.1, "early_stopping": True}


def build_baseline(
    family: str, seed: int, task: Task = "classification", types: FeatureTypes | None = None
) -> BaseEstimator:
    """An unfitted baseline estimator of the given family for the task; with ``types``, its
    preprocessing of mixed-type features in front (see tasks/models/preprocessing.py)."""
    if family not in BASELINES[task]:
        raise ValueError(
            f"unknown {task} baseline family {family!r}: choose one of {', '.join(BASELINES[task])}"
        )
    if family == "gradient_boosting":
        # LightGBM's shape (leaves of 31, 20 rows a leaf) at 0.1 for at most 200 rounds,
        # stopped when the loss on a tenth of the training rows has not improved for 10: on
        # the panel of real tables it holds its own against LightGBM with its defaults, where
        # 50 rounds at 0.3 lost on regression (docs/benchmarks.md, docs/decisions.md). A sweep
        # searches further.
        boosting = (
            HistGradientBoostingClassifier
            if task == "classification"
            else HistGradientBoostingRegressor
        )
        if types is None:
            return boosting(**BOOSTING, random_state=seed)
        encoder, categorical = ordinal_encoder(types)
        model = boosting(**BOOSTING, random_state=seed, categorical_features=categorical)
        return make_pipeline(encoder, model)
    encoded = [one_hot_encoder(types)] if types else []
    if family == "svm":
        # What a practitioner fits on small dense data (0.99 on digits): an RBF kernel on
        # features scaled to [0, 1]; probabilities by Platt scaling over internal folds.
        svm = CalibratedClassifierCV(SVC(C=10.0), ensemble=False)
        return make_pipeline(*encoded, MinMaxScaler(), svm)
    linear = LogisticRegression(max_iter=2000, C=1.0) if task == "classification" else Ridge()
    steps = [StandardScaler(), linear]
    return make_pipeline(*encoded, *steps)
