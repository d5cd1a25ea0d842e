"""Keras models and their fitting; the device strategy (CPU, GPU, several GPUs) in one place."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from tasks.baselines import BASELINES, build_baseline

logger = logging.getLogger(__name__)

# How the several-GPU case replicates the model, per Keras backend. PyTorch has no entry: Keras's
# own fit() does not distribute on it, so a PyTorch run trains on the first GPU.
_DATA_PARALLEL = {"tensorflow": "mirrored", "jax": "data_parallel"}
# How many batches, from the start of its first shuffled pass, a streaming fit sets its
# feature scaling from.
_ADAPT_BATCHES = 200
# The network's feature scaling is set from at most this many of the training rows (NumPy's
# variance of 600k rows held a copy of them).
_SCALING_ROWS = 100_000
# Up to this many rows, an in-memory fit on TensorFlow reads them from a tf.data pipeline that
# holds them; above, from chunks of _CHUNK_BATCHES batches of the array in NumPy (see
# _tf_batches).
_HELD_ROWS = 100_000
_CHUNK_BATCHES = 64
# Taken by whatever sets the process's global seeds (Keras's, TensorFlow's, NumPy's) and uses
# them before another thread can set them again.
_SEEDING = threading.Lock()
# Batches TensorFlow runs per call of the compiled training step (Keras's steps_per_execution).
# A batch of this small network is little arithmetic next to a call of the compiled function:
# on digits a sweep's fold took 1.6 s at one batch per call and 1.3 s at 32, and two folds side
# by side slowed each other by 18% at one and by 4% at 32 (fewer hand-offs between Python's
# thread and TensorFlow's). Keras runs at most an epoch per call; the trained weights are the
# same. On JAX the steps are a Python loop anyway, and PyTorch refuses anything but 1.
_TF_STEPS_PER_EXECUTION = 32


@dataclass(frozen=True)
class DeviceStrategy:
    """Where Keras trains: what is visible, and what the training code does with it."""

    backend: str
    device: str
    accelerators: int
    strategy: str
    precision: str
    replicas: int
    steps_per_execution: int

    def as_params(self) -> dict[str, str | int]:
        return {f"device_{key}": value for key, value in asdict(self).items()}

    def global_batch_size(self, per_replica: int) -> int:
        """The batch fit() is given: each replica takes ``per_replica`` rows of it."""
        return per_replica * self.replicas

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Build and fit inside this: the precision policy and, for several GPUs, the replicas.

        The global dtype policy is restored on the way out; a model built inside keeps its own.
        """
        import keras

        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy(self.precision)
        try:
            with self._replicated():
                yield
        finally:
            keras.mixed_precision.set_dtype_policy(previous)

    def _replicated(self) -> contextlib.AbstractContextManager:
        if self.strategy == "mirrored":
            import tensorflow as tf

            return tf.distribute.MirroredStrategy().scope()
        if self.strategy == "data_parallel":
            import keras

            gpus = keras.distribution.list_devices("gpu")
            return keras.distribution.DataParallel(devices=gpus).scope()
        return contextlib.nullcontext()


def choose_strategy(backend: str, gpus: int) -> DeviceStrategy:
    """What training does with ``gpus`` GPUs on a Keras backend (a pure function of the two).

    None: float32 on the CPU. One: Keras places the work on it; mixed float16 (the output layer
    stays float32). Several: one replica per GPU (``tf.distribute.MirroredStrategy`` on
    TensorFlow, ``keras.distribution.DataParallel`` on JAX), the global batch scaled to match.
    TensorFlow runs several batches per call of its compiled step, on every device.
    """
    parallel = _DATA_PARALLEL.get(backend) if gpus > 1 else None
    return DeviceStrategy(
        backend=backend,
        device="gpu" if gpus else "cpu",
        accelerators=gpus,
        strategy=parallel or "default",
        precision="mixed_float16" if gpus else "float32",
        replicas=gpus if parallel else 1,
        steps_per_execution=_TF_STEPS_PER_EXECUTION if backend == "tensorflow" else 1,
    )


def detect_device() -> DeviceStrategy:
    """The strategy for the GPUs visible to the active Keras backend."""
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
    return choose_strategy(backend, count)


def build_network(
    sample: np.ndarray,
    n_classes: int,
    hidden_units: int,
    learning_rate: float,
    steps_per_execution: int = 1,
    seed: int = 0,
):
    """The reference network: Flatten, Dense(128, ReLU), Dense(softmax); Adam; sparse CE;
    ``steps_per_execution`` batches per call of the compiled step; initial weights drawn from
    ``seed`` alone (not from the process's global seeds, which fits in other threads move).

    A Normalization layer in front, set to the mean and variance of ``sample``, carries the
    feature scaling inside the saved model, so the registered model takes raw feature values.
    A column that is constant in the sample is scaled by 1 rather than by ~1e7 (Keras's
    epsilon): in float16 a later non-zero value there would overflow to inf, and the
    prediction to NaN.
    """
    import keras

    mean, variance = sample.mean(axis=0), sample.var(axis=0)
    model = keras.Sequential(
        [
            keras.Input(shape=(sample.shape[1],), name="features"),
            keras.layers.Normalization(
                mean=mean, variance=np.where(variance > 0, variance, 1.0), name="scaling"
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(
                hidden_units,
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            ),
            keras.layers.Dense(
                n_classes,
                activation="softmax",
                dtype="float32",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
            ),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def serving_network(model):
    """The trained network as it is saved for serving: float32 layers, no optimizer state.

    Trained in mixed precision, the network itself has float16 layers and a loss-scaling
    optimizer: saved as is, it would serve in float16 on a CPU and warn, on loading, about
    optimizer variables it skips. The copy has the same weights (kept in float32 anyway).
    """
    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    served = type(model).from_config(config)
    served.set_weights(model.get_weights())
    return served


class _FitProgress:
    """A fit's backup, made at the end of every epoch: the weights, the optimizer's state, the
    epochs' logs and the early stopping's state (patience used, the best weights so far).

    A fit that resumes from it stops when, and keeps the weights that, the uninterrupted fit
    would have. Keras's BackupAndRestore restores the first two but not the early stopping,
    and writes them as HDF5: 10 ms an epoch, 0.6 s of the default job; as NumPy's .npz they
    take 1.4 ms. Each file is written whole before progress.json names it.
    """

    def __init__(self, folder: Path, stop):
        self.folder = folder
        self.stop = stop  # Keras hands every callback the model before training begins
        self.history: dict[str, list[float]] = {}

    def _variables(self) -> list:
        model = self.stop.model
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        return [*model.weights, *model.optimizer.variables]

    def restore(self, logs=None) -> None:
        state = self.folder / "progress.json"
        if not state.exists():
            return
        saved = json.loads(state.read_text())
        with np.load(self.folder / saved["state"]) as values:
            for index, variable in enumerate(self._variables()):
                variable.assign(values[f"arr_{index}"])
        self.stop.model._initial_epoch = saved["epoch"]  # as BackupAndRestore resumes a fit
        self.history = saved["history"]
        self.stop.wait, self.stop.best, self.stop.best_epoch = saved["early_stopping"]
        with np.load(self.folder / "best_weights.npz") as best:
            self.stop.best_weights = [best[f"arr_{i}"] for i in range(len(best.files))]
        logger.info("Resuming from %s after %d epochs", self.folder, len(self.history["loss"]))

    def save(self, epoch: int, logs: dict) -> None:
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.stop.best_epoch == epoch:
            np.savez(self.folder / "best_weights.npz", *self.stop.best_weights)
        state = f"state-{epoch + 1}.npz"
        np.savez(self.folder / state, *(variable.numpy() for variable in self._variables()))
        saved = {
            "epoch": epoch + 1,
            "state": state,
            "history": self.history,
            "early_stopping": [self.stop.wait, float(self.stop.best), self.stop.best_epoch],
        }
        partial = self.folder / "progress.json.partial"
        partial.write_text(json.dumps(saved))
        partial.replace(self.folder / "progress.json")
        (self.folder / f"state-{epoch}.npz").unlink(missing_ok=True)

    def remove(self, logs=None) -> None:
        """The fit is complete: nothing to resume from."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _tf_batches(X: np.ndarray, codes: np.ndarray, batch: int, shuffle_seed: int | None = None):
    """In-memory rows as one pass of tf.data batches, reshuffled every epoch with
    ``shuffle_seed`` (in their order without), and the Keras callbacks the pipeline needs.

    Up to _HELD_ROWS rows, TensorFlow holds them (_held_batches); more stay in NumPy and reach
    TensorFlow a chunk at a time (_chunked_batches). Keras's own adapter for arrays is neither:
    it sets up a parallel map, prefetching and autotuning threads for every epoch's iterators
    (~40 ms an epoch: half of a fit on digits, and with two fits on two cores their thread
    hand-offs left a third of the time idle), and converts the whole array into a tensor
    first (340 MiB more for 600k x 64 float32 rows, 146 MiB; 53 MiB in chunks).
    """
    import tensorflow as tf

    if len(X) <= _HELD_ROWS:
        rows, callbacks = _held_batches(X, codes, batch, shuffle_seed), []
    else:
        rows, follow = _chunked_batches(X, codes, batch, shuffle_seed)
        callbacks = [follow]
    options = tf.data.Options()
    options.autotune.enabled = False  # its threads cost more than they save on this network
    return rows.with_options(options), callbacks


def _held_batches(X: np.ndarray, codes: np.ndarray, batch: int, shuffle_seed: int | None):
    """Slices of the rows held in TensorFlow, shuffled element by element, then batched:
    21 ms an epoch on digits, against 51 ms for _chunked_batches's generator."""
    import tensorflow as tf

    rows = tf.data.Dataset.from_tensor_slices((X, codes))
    if shuffle_seed is not None:
        # The shuffle's order comes from TensorFlow's global seed as well as its own: set here,
        # under the lock every setter of the process's seeds takes, so that neither an
        # earlier fit of the process nor a fit in another thread (the local sweep's) moves it.
        with _SEEDING:
            tf.random.set_seed(shuffle_seed)
            rows = rows.shuffle(len(X), seed=shuffle_seed, reshuffle_each_iteration=True)
    return rows.batch(batch)


def _chunked_batches(X: np.ndarray, codes: np.ndarray, batch: int, shuffle_seed: int | None):
    """Chunks of _CHUNK_BATCHES batches that a generator gathers from the array in NumPy and
    tf.data cuts into batches; and a callback that tells the generator the epoch: epoch k
    reads the rows in an order drawn from (``shuffle_seed``, k) alone (a fit resumed at
    epoch k reads it as the uninterrupted fit did; Keras begins passes it drops, to build the
    model and at each epoch's end, and they change nothing).
    """
    import keras
    import tensorflow as tf

    size = batch * _CHUNK_BATCHES
    epoch = [0]

    def chunks():
        if shuffle_seed is None:
            order = np.arange(len(X))
        else:
            order = np.random.default_rng([shuffle_seed, epoch[0]]).permutation(len(X))
        for start in range(0, len(X), size):
            # Gathered, never sliced: TensorFlow may keep using a chunk's memory after the
            # generator let go of it, and a slice's is the array's own (a validation batch
            # then read other values: caught by the fits in threads test).
            rows = order[start : start + size]
            yield X[rows], codes[rows]

    signature = (
        tf.TensorSpec((None, X.shape[1]), tf.float32),
        tf.TensorSpec((None,), tf.as_dtype(codes.dtype)),
    )
    rows = tf.data.Dataset.from_generator(chunks, output_signature=signature).rebatch(batch)
    # Keras learns the steps of an epoch from the cardinality, which a generator lacks.
    rows = rows.apply(tf.data.experimental.assert_cardinality(-(-len(X) // batch)))
    follow = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda number, logs=None: epoch.__setitem__(0, number)
    )
    return rows, follow


def _sampled_rows(total: int, most: int, seed: int) -> np.ndarray | None:
    """At most ``most`` of ``total`` row positions, drawn with ``seed``, in their order; None
    when there are no more than that (take them all)."""
    if total <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, most, replace=False))


def parquet_classes(path: str | Path, target: str) -> np.ndarray:
    """The sorted distinct labels of ``target``, read one row group of that column at a time."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    return unique_labels(
        *(
            pc.unique(file.read_row_group(group, columns=[target]).column(0)).to_numpy(
                zero_copy_only=False
            )
            for group in range(file.num_row_groups)
        )
    )


def parquet_batches(
    path: str | Path,
    target: str,
    classes: np.ndarray,
    batch_size: int,
    row_groups: Sequence[int],
    seed: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (features, class codes) batches: every column but ``target`` is a feature.

    Each pass visits ``row_groups`` in a fresh seeded order and shuffles the rows within each,
    so only one row group is in memory at a time. One pass is ``parquet_steps`` batches.
    """
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    features = [name for name in file.schema_arrow.names if name != target]
    rng = np.random.default_rng(seed)
    while True:
        for group in rng.permutation(np.asarray(row_groups)):
            table = file.read_row_group(int(group), columns=[*features, target])
            X = np.column_stack([table[name].to_numpy() for name in features]).astype("float32")
            codes = np.searchsorted(classes, table[target].to_numpy(zero_copy_only=False))
            del table
            order = rng.permutation(len(codes))
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                yield X[rows], codes[rows]


def parquet_steps(path: str | Path, row_groups: Sequence[int], batch_size: int) -> int:
    """Batches in one pass of ``parquet_batches`` (a batch never spans two row groups)."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    return sum(math.ceil(metadata.row_group(g).num_rows / batch_size) for g in row_groups)


class KerasMLPClassifier(ClassifierMixin, BaseEstimator):
    """The Keras network behind the scikit-learn estimator API.

    That lets cross-validation, evaluation and registration treat every candidate alike.
    Without ``validation_data``, early stopping watches a stratified ``validation_fraction``
    of the training rows, like scikit-learn's ``MLPClassifier(early_stopping=True)``.
    ``batch_size`` is per replica: on several GPUs each step takes that many rows per GPU.
    With ``checkpoint_dir``, every epoch is backed up there; a fit that dies part-way resumes
    from its last completed epoch when fitted again with the same folder (and the same data
    and parameters), and the folder is removed once a fit completes.
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
        checkpoint_dir: str | Path | None = None,
    ):
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir

    def fit(self, X, y, validation_data=None, callbacks: Sequence = ()):
        """Fit in memory; ``callbacks`` are extra Keras callbacks, run after the estimator's."""
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
        device = detect_device()
        batch = device.global_batch_size(self.batch_size)
        if device.backend == "tensorflow":
            batches, pipeline_callbacks = _tf_batches(X, codes, batch, self.random_state)
            callbacks = [*pipeline_callbacks, *callbacks]
            data = {
                "x": batches,
                "validation_data": _tf_batches(X_val, codes_val, batch)[0],
                "shuffle": False,  # the pipeline reshuffles
            }
        else:
            data = {"x": X, "y": codes, "validation_data": (X_val, codes_val), "batch_size": batch}
        picked = _sampled_rows(len(X), _SCALING_ROWS, self.random_state)
        return self._train(device, X if picked is None else X[picked], callbacks, **data)

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
        """
        import pyarrow.parquet as pq

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
        device = detect_device()
        batch = device.global_batch_size(self.batch_size)
        first_pass = parquet_batches(path, target, self.classes_, batch, train, self.random_state)
        sample = np.concatenate([X for X, _ in itertools.islice(first_pass, _ADAPT_BATCHES)])
        return self._train(
            device,
            sample,
            callbacks,
            x=parquet_batches(path, target, self.classes_, batch, train, self.random_state),
            steps_per_epoch=parquet_steps(path, train, batch),
            validation_data=parquet_batches(
                validation_path, target, self.classes_, batch, validation, self.random_state
            ),
            validation_steps=parquet_steps(validation_path, validation, batch),
            shuffle=False,  # the batches come shuffled
        )

    def _train(self, device: DeviceStrategy, sample: np.ndarray, callbacks: Sequence, **data):
        """Build the network under ``device``, its scaling set by ``sample``; fit on ``data``."""
        import keras

        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.patience, restore_best_weights=True
        )
        own = [stop]
        progress = None
        if self.checkpoint_dir is not None:
            folder = Path(self.checkpoint_dir)
            progress = _FitProgress(folder, stop)
            own.append(
                keras.callbacks.LambdaCallback(
                    on_train_begin=progress.restore,
                    on_epoch_end=progress.save,
                    on_train_end=progress.remove,
                )
            )
        with device.applied():
            with _SEEDING:  # other backends' array adapters shuffle from them (unguarded)
                keras.utils.set_random_seed(self.random_state)
            self.model_ = build_network(
                sample,
                len(self.classes_),
                self.hidden_units,
                self.learning_rate,
                device.steps_per_execution,
                self.random_state,
            )
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
        self.n_features_in_ = sample.shape[1]
        logger.info(
            "Keras network on %s (%s, %s): %d epochs (best %d), val_accuracy %.4f",
            device.device,
            device.strategy,
            device.precision,
            self.n_epochs_,
            self.best_epoch_,
            self.history_["val_accuracy"][self.best_epoch_ - 1],
        )
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict(np.asarray(X, dtype="float32"), batch_size=4096, verbose=0)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


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


def _lock(path: Path):
    """``path`` opened and, when no other process holds it, locked: (handle, owned).

    A completed fit removes its lock file (see ``claimed``), so a file locked here may have
    been unlinked in between, or its folder removed before the open: then lock the new one.
    """
    import fcntl

    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = path.open("w")
        except FileNotFoundError:  # the folder went with the last completed fit
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle, False
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle, True
        handle.close()


@contextlib.contextmanager
def claimed(folder: Path) -> Iterator[Path]:
    """A fit's backup folder, for this process alone while it trains.

    Two identical jobs at once share a folder name; the second trains from a fresh private
    folder instead of trampling the first one's backups. The claim is a file lock, so the
    folder of a process that was killed is free again for the rerun that resumes from it.
    A fit that completes (its backups already gone) removes the lock file, and the job's
    folder once no other fit is in it: checkpoints hold nothing but unfinished fits.
    """
    import tempfile

    lock = folder.parent / f"{folder.name}.lock"
    handle, owned = _lock(lock)
    with handle:
        if owned:
            yield folder
            lock.unlink()
        else:
            with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f"{folder.name}-") as own:
                yield Path(own)
    with contextlib.suppress(OSError):  # not empty: another fit of the job is under way
        folder.parent.rmdir()


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
    concurrent jobs from starving each other (see Settings.prepare). Gradient boosting on
    digits took 1.5 s on two threads, 0.8 s on one; on 20,000 rows 0.8 s either way. The
    training flow fits the baselines beside the network, where a second thread fights
    TensorFlow's: logistic regression on 20,000 rows took 4.7 s on two BLAS threads, 0.6 s
    on one.
    """
    if isinstance(estimator, KerasMLPClassifier):
        return estimator.fit(X_train, y_train, validation_data=(X_val, y_val))
    rows = None if baseline_rows is None else _sampled_rows(len(X_train), baseline_rows, seed)
    if rows is not None:
        X_train, y_train = X_train.iloc[rows], y_train.iloc[rows]
    with threadpool_limits(1):
        return estimator.fit(X_train, y_train)
