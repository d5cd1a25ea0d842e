"""The built-in families, by name: the Keras network and the scikit-learn baselines of each
task. Names only, so that what checks or reports a family imports no modelling library."""

from __future__ import annotations

KERAS_FAMILY = "keras_mlp"
# The baselines every network has to beat (built in tasks/models/baselines.py).
BASELINES: dict[str, tuple[str, ...]] = {
    "classification": ("logistic_regression", "svm", "gradient_boosting"),
    "regression": ("ridge", "gradient_boosting"),
}
# Each task's families, the network first (it wins a tie).
BUILT_IN = {task: (KERAS_FAMILY, *families) for task, families in BASELINES.items()}
FAMILIES = tuple(dict.fromkeys(family for task in BUILT_IN.values() for family in task))
