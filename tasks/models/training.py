"""The candidates of a training job: the Keras network and the scikit-learn baselines, built
and fitted alike."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.multiclass import unique_labels
from threadpoolctl import threadpool_limits

from tasks.data.features import FeatureTypes, Task
from tasks.data.splits import sampled_rows
from tasks.models import custom
from tasks.models.baselines import SVM_MOST_ROWS, build_baseline
from tasks.models.custom import CandidateEntry
from tasks.models.families import BASELINES, KERAS_FAMILY
from tasks.models.network import KerasMLPClassifier, KerasMLPRegressor
from tasks.models.preprocessing import one_hot_encoder

# Rows of the validation set a user's candidate predicts once fitted, to check its outputs.
CHECKED_ROWS = 8


def candidates(
    task: Task = "classification", rows: int = 0, declared: list[CandidateEntry] | None = None
) -> tuple[CandidateEntry, ...]:
    """The candidates a job of the task fits on ``rows`` training rows: the ``declared`` ones,
    else the network first (it wins a tie) and the baselines, the kernel SVM only up to
    SVM_MOST_ROWS rows."""
    if declared:
        return tuple(declared)
    baselines = (f for f in BASELINES[task] if f != "svm" or rows <= SVM_MOST_ROWS)
    return tuple(CandidateEntry(entry=family) for family in (KERAS_FAMILY, *baselines))


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
        return _stopping_fits(estimator, y_train).fit(X_train, y_train)


def _stopping_fits(estimator: BaseEstimator, y) -> BaseEstimator:
    """Gradient boosting's early stopping holds out a stratified tenth of the rows: where that
    tenth cannot hold every class (a few dozen rows of many classes), it fits its rounds out
    instead of refusing the fit."""
    model = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if getattr(model, "early_stopping", None) is True and is_classifier(model):
        counts = np.unique(np.asarray(y), return_counts=True)[1]
        held = math.ceil(model.validation_fraction * len(y))
        if held < len(counts) or len(y) - held < len(counts) or counts.min() < 2:
            model.set_params(early_stopping=False)
    return estimator


def fit_users_candidate(
    entry: CandidateEntry,
    X_train,
    y_train,
    X_val,
    y_val,
    epochs: int,
    seed: int,
    checkpoint_dir: str | Path | None = None,
    task: Task = "classification",
    types: FeatureTypes | None = None,
    baseline_rows: int | None = None,
) -> BaseEstimator:
    """A user's candidate (tasks/models/custom.py) made, fitted as the built-in families are
    (a Keras model as the network, with early stopping and backups; an estimator as a
    baseline, behind the same preprocessing) and its outputs checked; any failure of its code
    is a CandidateError that names it."""
    try:
        encoder = one_hot_encoder(types) if types and entry.inputs == "encoded" else None
        rows = None if baseline_rows is None else sampled_rows(len(X_train), baseline_rows, seed)
        seen = X_train if rows is None else X_train.iloc[rows]
        names = (
            [str(c) for c in clone(encoder).fit(seen).get_feature_names_out()]
            if encoder is not None
            else [str(c) for c in X_train.columns]
        )
        classes = list(unique_labels(y_train)) if task == "classification" else []
        spec = custom.CandidateSpec(
            task, classes, len(names), names, seed, dict(entry.params), entry.inputs == "raw"
        )
        made = custom.call(entry, spec)
        if custom.is_keras_model(made):
            custom.check_servable(entry, made)
            network = KerasMLPClassifier if task == "classification" else KerasMLPRegressor
            estimator = network(
                epochs=epochs,
                random_state=seed,
                checkpoint_dir=checkpoint_dir,
                encoder=encoder,
                builder=entry,
            )
        elif custom.is_estimator(made):
            if task == "classification" and not hasattr(made, "predict_proba"):
                raise custom.CandidateError(
                    f"candidate {entry.family} ({entry.entry}) returned a classifier without "
                    "predict_proba: the platform scores class probabilities"
                )
            estimator = make_pipeline(encoder, clone(made)) if encoder else clone(made)
        else:
            raise custom.CandidateError(
                f"candidate {entry.family} ({entry.entry}) returned {type(made).__name__}, not a "
                "Keras model or an unfitted scikit-learn estimator"
            )
        fitted = fit_candidate(estimator, X_train, y_train, X_val, y_val, baseline_rows, seed)
        checked = X_val.iloc[:CHECKED_ROWS]
        outputs = fitted.predict_proba(checked) if classes else fitted.predict(checked)
        custom.check_outputs(entry, np.asarray(outputs), len(checked), len(classes) or 1)
        return fitted
    except custom.CandidateError:
        raise  # already names it (raised from itself, it would be its own cause: a cycle)
    except Exception as exc:
        raise custom.failed(entry, exc) from exc
