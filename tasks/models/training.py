"""The candidates of a training job: the Keras network and the scikit-learn baselines, built
and fitted alike."""

from __future__ import annotations

from pathlib import Path

from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from tasks.data.features import FeatureTypes, Task
from tasks.data.splits import sampled_rows
from tasks.models.baselines import BASELINES, SVM_MOST_ROWS, build_baseline
from tasks.models.network import KerasMLPClassifier, KerasMLPRegressor
from tasks.models.preprocessing import one_hot_encoder

KERAS_FAMILY = "keras_mlp"


def candidates(task: Task = "classification", rows: int = 0) -> tuple[str, ...]:
    """The families a job of the task fits on ``rows`` training rows, the network first (it
    wins a tie); the kernel SVM only up to SVM_MOST_ROWS rows."""
    baselines = (f for f in BASELINES[task] if f != "svm" or rows <= SVM_MOST_ROWS)
    return (KERAS_FAMILY, *baselines)


def build_candidate(
    family: str,
    epochs: int,
    seed: int,
    checkpoint_dir: str | Path | None = None,
    task: Task = "classification",
    types: FeatureTypes | None = None,
) -> BaseEstimator:
    """An unfitted candidate of the task: the Keras network (backed up each epoch to
    ``checkpoint_dir`` when given) or one of the scikit-learn baselines; with ``types``, each
    with its preprocessing of mixed-type features (see tasks/models/preprocessing.py)."""
    if family == KERAS_FAMILY:
        network = KerasMLPClassifier if task == "classification" else KerasMLPRegressor
        return network(
            epochs=epochs,
            random_state=seed,
            checkpoint_dir=checkpoint_dir,
            encoder=one_hot_encoder(types) if types else None,
        )
    return build_baseline(family, seed, task, types)


def fit_candidate(
    estimator: BaseEstimator,
    X_train,
    y_train,
    X_val,
    y_val,
    baseline_rows: int | None = None,
    seed: int = 0,
) -> BaseEstimator:
    """Fit on the training rows; the network also watches the validation rows to stop early.

    A baseline fits on a seeded sample of at most ``baseline_rows`` of them: on millions of
    rows gradient boosting alone would take longer than the network it is there to check.
    It fits on one thread (OpenMP's and BLAS's): on so few rows a second one only adds waits
    at every split, and each wait is a sleep under the OMP_WAIT_POLICY=PASSIVE that keeps
    concurrent jobs from starving each other (see Settings.prepare). The training flow fits
    the baselines beside the network, where a second thread would also fight TensorFlow's for
    the cores (figures in docs/decisions.md).
    """
    if isinstance(estimator, KerasMLPClassifier | KerasMLPRegressor):
        return estimator.fit(X_train, y_train, validation_data=(X_val, y_val))
    rows = None if baseline_rows is None else sampled_rows(len(X_train), baseline_rows, seed)
    if rows is not None:
        X_train, y_train = X_train.iloc[rows], y_train.iloc[rows]
    with threadpool_limits(1):
        return estimator.fit(X_train, y_train)
