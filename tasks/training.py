"""Keras models and their fitting; the device strategy (CPU or GPU) in one place."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from tasks.baselines import BASELINES, build_baseline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceStrategy:
    """Where Keras trains: what is visible, and what the training code does with it."""

    backend: str
    device: str
    accelerators: int

    def as_params(self) -> dict[str, str | int]:
        return {f"device_{key}": value for key, value in asdict(self).items()}


def detect_device() -> DeviceStrategy:
    """GPUs visible to the active Keras backend; Keras places work on the first one itself."""
    import keras

    backend = keras.backend.backend()
    count = 0
    if backend == "tensorflow":
        import tensorflow as tf

        count = len(tf.config.list_physical_devices("GPU"))
    elif backend == "jax":
        import jax

        count = sum(d.platform == "gpu" for d in jax.devices())
    elif backend == "torch":
        import torch

        count = torch.cuda.device_count()
    return DeviceStrategy(backend=backend, device="gpu" if count else "cpu", accelerators=count)


def build_network(n_features: int, n_classes: int, hidden_units: int, learning_rate: float):
    """The reference network: Flatten, Dense(128, ReLU), Dense(softmax); Adam; sparse CE.

    A Normalization layer in front carries the feature scaling inside the saved model, so the
    registered model takes raw feature values.
    """
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(n_features,), name="features"),
            keras.layers.Normalization(name="scaling"),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden_units, activation="relu"),
            keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class KerasMLPClassifier(ClassifierMixin, BaseEstimator):
    """The Keras network behind the scikit-learn estimator API.

    That lets cross-validation, evaluation and registration treat every candidate alike.
    Without ``validation_data``, early stopping watches a stratified ``validation_fraction``
    of the training rows, like scikit-learn's ``MLPClassifier(early_stopping=True)``.
    """

    def __init__(
        self,
        hidden_units: int = 128,
        epochs: int = 60,
        batch_size: int = 64,
        learning_rate: float = 3e-3,
        patience: int = 8,
        validation_fraction: float = 0.2,
        random_state: int = 42,
    ):
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X, y, validation_data=None):
        import keras

        X = np.asarray(X, dtype="float32")
        self.classes_ = unique_labels(y)
        codes = np.searchsorted(self.classes_, np.asarray(y))
        if validation_data is None:
            X, X_val, codes, codes_val = train_test_split(
                X,
                codes,
                test_size=self.validation_fraction,
                stratify=codes,
                random_state=self.random_state,
            )
        else:
            X_val = np.asarray(validation_data[0], dtype="float32")
            codes_val = np.searchsorted(self.classes_, np.asarray(validation_data[1]))
        keras.utils.set_random_seed(self.random_state)
        self.model_ = build_network(
            X.shape[1], len(self.classes_), self.hidden_units, self.learning_rate
        )
        self.model_.get_layer("scaling").adapt(X)
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.patience, restore_best_weights=True
        )
        history = self.model_.fit(
            X,
            codes,
            validation_data=(X_val, codes_val),
            epochs=self.epochs,
            batch_size=self.batch_size,
            callbacks=[stop],
            verbose=0,
        )
        self.history_ = {
            name: [float(v) for v in values] for name, values in history.history.items()
        }
        self.n_epochs_ = len(history.epoch)
        self.best_epoch_ = int(np.argmin(self.history_["val_loss"])) + 1
        self.n_features_in_ = X.shape[1]
        logger.info(
            "Keras network: %d epochs (best %d), val_accuracy %.4f",
            self.n_epochs_,
            self.best_epoch_,
            self.history_["val_accuracy"][self.best_epoch_ - 1],
        )
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict(np.asarray(X, dtype="float32"), verbose=0)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


KERAS_FAMILY = "keras_mlp"
CANDIDATES = (KERAS_FAMILY, *BASELINES)


def build_candidate(family: str, epochs: int, seed: int) -> ClassifierMixin:
    """An unfitted candidate: the Keras network or one of the scikit-learn baselines."""
    if family == KERAS_FAMILY:
        return KerasMLPClassifier(epochs=epochs, random_state=seed)
    return build_baseline(family, seed)


def fit_candidate(estimator: ClassifierMixin, X_train, y_train, X_val, y_val) -> ClassifierMixin:
    """Fit on the training rows; the network also watches the validation rows to stop early."""
    if isinstance(estimator, KerasMLPClassifier):
        return estimator.fit(X_train, y_train, validation_data=(X_val, y_val))
    return estimator.fit(X_train, y_train)
