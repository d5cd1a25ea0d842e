"""The Keras network behind the scikit-learn estimator API: built, fitted (in memory or
streamed from Parquet, backed up every epoch), and saved for serving."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from tasks.data.splits import sampled_rows
from tasks.models.architecture import build_network
from tasks.models.checkpoints import FitProgress
from tasks.models.devices import DeviceStrategy, detect_device
from tasks.models.preprocessing import EncodedRows, encode
from tasks.models.streaming import (
    HELD_ROWS,
    SEEDING,
    parquet_batches,
    parquet_classes,
    parquet_steps,
    tf_batches,
)

logger = logging.getLogger(__name__)


# How many batches, from the start of its first shuffled pass, a streaming fit sets its
# feature scaling from.
_ADAPT_BATCHES = 200


# The network's encoder and feature scaling are set from at most this many of the training
# rows: medians, categories and variances are as good from them, and fitting the encoder
# (text categories as Python objects) on twice as many put 0.6x the raw table on the 1M-row
# benchmark's peak memory. The baselines learn theirs from MLOPS_BASELINE_ROWS (20,000).
SCALING_ROWS = 50_000


class _KerasMLP(BaseEstimator):
    """The Keras network behind the scikit-learn estimator API.

    That lets cross-validation, evaluation and registration treat every candidate alike.
    Without ``validation_data``, early stopping watches a ``validation_fraction`` of the
    training rows (stratified for a classifier), like scikit-learn's
    ``MLPClassifier(early_stopping=True)``. ``batch_size`` is per replica: on several GPUs
    each step takes that many rows per GPU. With ``checkpoint_dir``, every epoch is backed up
    there; a fit that dies part-way resumes from its last completed epoch when fitted again
    with the same folder (and the same data and parameters), and the folder is removed once a
    fit completes. ``device`` is where it trains (None: the GPUs the backend sees); the feature
    scaling is set from at most ``scaling_rows`` training rows, and up to ``held_rows`` rows
    TensorFlow holds them all (see `tf_batches`). ``encoder`` (see tasks/models/preprocessing.py),
    when given, is fitted on the training rows and turns a table of mixed types into the
    numbers the network reads, in fitting and in predicting alike. ``builder``, a user's
    candidate entry (tasks/models/custom.py), makes the network instead of the reference one.
    """

    _watched = "val_loss"  # the validation metric a fit's log line reports

    def __init__(
        self,
        hidden_units: int = 128,
        epochs: int = 60,
        batch_size: int = 64,
        learning_rate: float = 3e-3,
        patience: int = 8,
        validation_fraction: float = 0.2,
        random_state: int = 42,
        checkpoint_dir: str | Path | None = None,
        device: DeviceStrategy | None = None,
        scaling_rows: int = SCALING_ROWS,
        held_rows: int = HELD_ROWS,
        encoder=None,
        builder=None,
    ):
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.scaling_rows = scaling_rows
        self.held_rows = held_rows
        self.encoder = encoder
        self.builder = builder

    def _device(self) -> DeviceStrategy:
        return self.device or detect_device()

    def _inputs(self, X) -> np.ndarray:
        """The network's input: the encoded rows, or the numbers as float32."""
        if getattr(self, "encoder_", None) is not None:
            return encode(self.encoder_, X)
        return np.asarray(X, dtype="float32")

    def _targets(self, y) -> np.ndarray:
        """What the network learns from the labels (set up on the training labels)."""
        raise NotImplementedError

    def _learned(self, y) -> np.ndarray:
        """The same for other rows' labels (the validation rows)."""
        raise NotImplementedError

    def _streamed(self, X, device: DeviceStrategy):
        """Rows too many for TensorFlow to hold go to it a chunk at a time (`tf_batches`); with
        an encoder, they are encoded a chunk at a time too, never the whole table at once."""
        if self.encoder_ is not None and device.backend == "tensorflow" and len(X) > self.held_rows:
            return EncodedRows(self.encoder_, X)
        return self._inputs(X)

    def fit(self, X, y, validation_data=None, callbacks: Sequence = ()):
        """Fit in memory; ``callbacks`` are extra Keras callbacks, run after the estimator's.

        An encoder learns from at most ``scaling_rows`` of the training rows, as the scaling
        does (its medians and categories are as good from a large sample, and the whole
        table encoded at once would be several times its size)."""
        device = self._device()
        self.encoder_ = None
        self.input_names_ = [str(c) for c in getattr(X, "columns", [])]
        if self.encoder is not None:
            picked = sampled_rows(len(X), self.scaling_rows, self.random_state)
            self.encoder_ = clone(self.encoder).fit(X if picked is None else X.iloc[picked])
            self.input_names_ = [str(c) for c in self.encoder_.get_feature_names_out()]
        given = validation_data is not None
        X, codes = (self._streamed(X, device) if given else self._inputs(X)), self._targets(y)
        if validation_data is None:
            X, X_val, codes, codes_val = train_test_split(
                X,
                codes,
                test_size=self.validation_fraction,
                stratify=codes if is_classifier(self) else None,
                random_state=self.random_state,
            )
        else:
            X_val = self._streamed(validation_data[0], device)
            codes_val = self._learned(validation_data[1])
        batch = device.global_batch_size(self.batch_size)
        if device.backend == "tensorflow":
            batches, pipeline_callbacks = tf_batches(
                X, codes, batch, self.random_state, self.held_rows
            )
            callbacks = [*pipeline_callbacks, *callbacks]
            data = {
                "x": batches,
                "validation_data": tf_batches(X_val, codes_val, batch, None, self.held_rows)[0],
                "shuffle": False,  # the pipeline reshuffles
            }
        else:
            data = {"x": X, "y": codes, "validation_data": (X_val, codes_val), "batch_size": batch}
        picked = sampled_rows(len(X), self.scaling_rows, self.random_state)
        if picked is None and isinstance(X, EncodedRows):
            picked = np.arange(len(X))  # the rows, encoded, to set the scaling from
        return self._train(device, lambda: X if picked is None else X[picked], callbacks, **data)

    def _network(self, sample: np.ndarray, device: DeviceStrategy):
        raise NotImplementedError

    def _users_network(self, sample: np.ndarray, device: DeviceStrategy, classes: list):
        """The network the user's function makes (compiled for the task if it is not)."""
        from tasks.models import custom

        names = getattr(self, "input_names_", None) or [f"x{i}" for i in range(sample.shape[1])]
        spec = custom.CandidateSpec(
            "classification" if classes else "regression",
            classes,
            sample.shape[1],
            names,
            self.random_state,
            dict(self.builder.params),
            self.builder.inputs == "raw",
        )
        made = custom.call(self.builder, spec)
        if not custom.is_keras_model(made):
            raise custom.CandidateError(
                f"candidate {self.builder.family} returned a Keras model once and "
                f"{type(made).__name__} the next time"
            )
        return custom.compiled(made, spec.task, device.steps_per_execution)

    def _train(
        self,
        device: DeviceStrategy,
        scaling_rows: Callable[[], np.ndarray],
        callbacks: Sequence,
        **data,
    ):
        """Build the network under ``device``, its scaling set by the rows ``scaling_rows()``
        gives (taken for that alone: encoded, they would otherwise stay beside the whole fit,
        a third of the raw table on the 1M-row benchmark); fit on ``data``."""
        import keras

        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.patience, restore_best_weights=True
        )
        own = [stop]
        progress = None
        if self.checkpoint_dir is not None:
            folder = Path(self.checkpoint_dir)
            progress = FitProgress(folder, stop)
            own.append(
                keras.callbacks.LambdaCallback(
                    on_train_begin=progress.restore,
                    on_epoch_end=progress.save,
                    on_train_end=progress.remove,
                )
            )
        with device.applied():
            with SEEDING:  # other backends' array adapters shuffle from them (unguarded)
                keras.utils.set_random_seed(self.random_state)
            sample = scaling_rows()
            self.n_features_in_ = sample.shape[1]
            self.model_ = self._network(sample, device)
            del sample
            history = self.model_.fit(
                **data, epochs=self.epochs, callbacks=[*own, *callbacks], verbose=0
            )
        self.history_ = (
            progress.history
            if progress
            else {name: [float(v) for v in values] for name, values in history.history.items()}
        )
        self.n_epochs_ = len(self.history_["loss"])
        self.best_epoch_ = int(np.argmin(self.history_["val_loss"])) + 1
        # A user's network, compiled by the user, may report no metric beyond its loss.
        watched = self._watched if self._watched in self.history_ else "val_loss"
        logger.info(
            "Keras network on %s (%s, %s): %d epochs (best %d), %s %.4f",
            device.device,
            device.strategy,
            device.precision,
            self.n_epochs_,
            self.best_epoch_,
            watched,
            self.history_[watched][self.best_epoch_ - 1],
        )
        return self

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict(self._inputs(X), batch_size=4096, verbose=0)


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    """The network as a classifier: softmax over the training labels' classes."""

    _watched = "val_accuracy"

    def _targets(self, y) -> np.ndarray:
        self.classes_ = unique_labels(y)
        return self._learned(y)

    def _learned(self, y) -> np.ndarray:
        return np.searchsorted(self.classes_, np.asarray(y))

    def _network(self, sample: np.ndarray, device: DeviceStrategy):
        if self.builder is not None:
            return self._users_network(sample, device, list(self.classes_))
        return build_network(
            sample,
            len(self.classes_),
            self.hidden_units,
            self.learning_rate,
            device.steps_per_execution,
            self.random_state,
        )

    def fit_parquet(
        self,
        path: str | Path,
        target: str,
        validation_path: str | Path | None = None,
        callbacks: Sequence = (),
    ):
        """Fit from a Parquet file of any size, holding one row group in memory at a time.

        The classes come from a pass over the ``target`` column alone; the scaling is set from
        the first batches of a shuffled pass. Without ``validation_path``, a seeded
        ``validation_fraction`` of the file's row groups is held out for early stopping.
        The columns must be complete numbers (no ``encoder``).
        """
        import pyarrow.parquet as pq

        self.encoder_ = None
        self.classes_ = parquet_classes(path, target)
        groups = np.arange(pq.ParquetFile(path).num_row_groups)
        if validation_path is None:
            if len(groups) < 2:
                raise ValueError(
                    f"{path} has one row group, so none can be held out for validation: "
                    "pass validation_path, or write the file with several row groups"
                )
            held_out = max(1, round(self.validation_fraction * len(groups)))
            shuffled = np.random.default_rng(self.random_state).permutation(groups)
            validation_path, train, validation = path, shuffled[held_out:], shuffled[:held_out]
        else:
            train, validation = groups, np.arange(pq.ParquetFile(validation_path).num_row_groups)
        device = self._device()
        batch = device.global_batch_size(self.batch_size)
        first_pass = parquet_batches(path, target, self.classes_, batch, train, self.random_state)
        return self._train(
            device,
            lambda: np.concatenate([X for X, _ in itertools.islice(first_pass, _ADAPT_BATCHES)]),
            callbacks,
            x=parquet_batches(path, target, self.classes_, batch, train, self.random_state),
            steps_per_epoch=parquet_steps(path, train, batch),
            validation_data=parquet_batches(
                validation_path, target, self.classes_, batch, validation, self.random_state
            ),
            validation_steps=parquet_steps(validation_path, validation, batch),
            shuffle=False,  # the batches come shuffled
        )

    def predict_proba(self, X):
        return self._outputs(X)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class KerasMLPRegressor(RegressorMixin, _KerasMLP):
    """The network as a regressor: one linear output in the label's units, mean squared error."""

    _watched = "val_mae"

    def _targets(self, y) -> np.ndarray:
        values = self._learned(y)
        self.target_scale_ = (float(values.mean()), float(values.std()) or 1.0)
        return values

    def _learned(self, y) -> np.ndarray:
        return np.asarray(y, dtype="float32")

    def _network(self, sample: np.ndarray, device: DeviceStrategy):
        if self.builder is not None:
            return self._users_network(sample, device, [])
        return build_network(
            sample,
            1,
            self.hidden_units,
            self.learning_rate,
            device.steps_per_execution,
            self.random_state,
            self.target_scale_,
        )

    def predict(self, X):
        return self._outputs(X)[:, 0]
