"""The candidates of a training job: the Keras network and the scikit-learn baselines, built
and fitted alike."""

from __future__ import annotations

from pathlib import Path

from sklearn.base import ClassifierMixin
from threadpoolctl import threadpool_limits

from tasks.baselines import BASELINES, build_baseline
from tasks.network import KerasMLPClassifier
from tasks.splits import sampled_rows

KERAS_FAMILY = "keras_mlp"
CANDIDATES = (KERAS_FAMILY, *BASELINES)


def build_candidate(
    family: str, epochs: int, seed: int, checkpoint_dir: str | Path | None = None
) -> ClassifierMixin:
    """An unfitted candidate: the Keras network (backed up each epoch to ``checkpoint_dir``
    when given) or one of the scikit-learn baselines."""
    if family == KERAS_FAMILY:
        return KerasMLPClassifier(epochs=epochs, random_state=seed, checkpoint_dir=checkpoint_dir)
    return build_baseline(family, seed)


def fit_candidate(
    estimator: ClassifierMixin,
    X_train,
    y_train,
    X_val,
    y_val,
    baseline_rows: int | None = None,
    seed: int = 0,
) -> ClassifierMixin:
    """Fit on the training rows; the network also watches the validation rows to stop early.

    A baseline fits on a seeded sample of at most ``baseline_rows`` of them: on millions of
    rows gradient boosting alone would take longer than the network it is there to check.
    It fits on one thread (OpenMP's and BLAS's): on so few rows a second one only adds waits
    at every split, and each wait is a sleep under the OMP_WAIT_POLICY=PASSIVE that keeps
    concurrent jobs from starving each other (see Settings.prepare). The training flow fits
    the baselines beside the network, where a second thread would also fight TensorFlow's for
    the cores (figures in docs/decisions.md).
    """
    if isinstance(estimator, KerasMLPClassifier):
        return estimator.fit(X_train, y_train, validation_data=(X_val, y_val))
    rows = None if baseline_rows is None else sampled_rows(len(X_train), baseline_rows, seed)
    if rows is not None:
        X_train, y_train = X_train.iloc[rows], y_train.iloc[rows]
    with threadpool_limits(1):
        return estimator.fit(X_train, y_train)
