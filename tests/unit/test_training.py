"""The Keras network behind the scikit-learn estimator API, and the device it trains on."""

from __future__ import annotations

import dataclasses
import shutil
import warnings

import keras
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.base import clone

import tasks.training
from tasks.training import (
    CANDIDATES,
    KerasMLPClassifier,
    build_candidate,
    choose_strategy,
    claimed,
    detect_device,
    serving_network,
)


def test_network_learns_digits_and_keeps_its_labels(digits):
    X = digits.drop(columns="target")
    y = digits["target"].map(lambda v: f"digit-{v}")  # labels need not be 0..k-1
    model = KerasMLPClassifier(epochs=15, random_state=1).fit(X.iloc[:1200], y.iloc[:1200])
    probabilities = model.predict_proba(X.iloc[1200:])
    assert probabilities.shape == (597, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert list(model.classes_) == [f"digit-{d}" for d in range(10)]
    accuracy = (model.predict(X.iloc[1200:]) == y.iloc[1200:].to_numpy()).mean()
    assert accuracy > 0.9
    assert len(model.history_["val_loss"]) == model.n_epochs_ <= 15
    assert 1 <= model.best_epoch_ <= model.n_epochs_


def test_reference_architecture():
    model = KerasMLPClassifier(epochs=1).fit(np.random.default_rng(0).random((40, 6)), [0, 1] * 20)
    layers = [type(layer).__name__ for layer in model.model_.layers]
    assert layers == ["Normalization", "Flatten", "Dense", "Dense"]
    assert model.model_.layers[2].units == 128
    assert model.model_.layers[-1].activation.__name__ == "softmax"
    assert model.model_.loss == "sparse_categorical_crossentropy"


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(tmp_path):
    original = KerasMLPClassifier(epochs=3, hidden_units=16, checkpoint_dir=tmp_path)
    copy = clone(original)
    assert copy.get_params() == original.get_params() and not hasattr(copy, "model_")


def test_every_candidate_family_builds(tmp_path):
    assert CANDIDATES == ("keras_mlp", "logistic_regression", "gradient_boosting")
    network = build_candidate("keras_mlp", epochs=7, seed=3, checkpoint_dir=tmp_path)
    assert (network.epochs, network.checkpoint_dir) == (7, tmp_path)
    assert hasattr(build_candidate("gradient_boosting", epochs=7, seed=3), "fit")


def test_device_names_what_the_backend_sees():
    device = detect_device()
    assert device.backend == "tensorflow"
    assert device.device == ("gpu" if device.accelerators else "cpu")
    assert device == choose_strategy("tensorflow", device.accelerators)
    assert device.as_params()["device_device"] == device.device


@pytest.mark.parametrize(
    ("backend", "gpus", "device", "strategy", "precision", "replicas", "steps"),
    [
        ("tensorflow", 0, "cpu", "default", "float32", 1, 32),
        ("tensorflow", 1, "gpu", "default", "mixed_float16", 1, 32),
        ("tensorflow", 4, "gpu", "mirrored", "mixed_float16", 4, 32),
        ("jax", 0, "cpu", "default", "float32", 1, 1),
        ("jax", 4, "gpu", "data_parallel", "mixed_float16", 4, 1),
        ("torch", 4, "gpu", "default", "mixed_float16", 1, 1),  # Keras's fit() stays on one GPU
    ],
)
def test_strategy_for_no_one_and_several_gpus(
    backend, gpus, device, strategy, precision, replicas, steps
):
    chosen = choose_strategy(backend, gpus)
    assert chosen.as_params() == {
        "device_backend": backend,
        "device_device": device,
        "device_accelerators": gpus,
        "device_strategy": strategy,
        "device_precision": precision,
        "device_replicas": replicas,
        "device_steps_per_execution": steps,
    }
    assert chosen.global_batch_size(64) == 64 * replicas


def test_batches_per_call_leave_the_trained_network_unchanged(digits, monkeypatch):
    X, y = digits.drop(columns="target").iloc[:1200], digits["target"].iloc[:1200]
    device = detect_device()
    batched = KerasMLPClassifier(epochs=12, patience=3, random_state=0).fit(X, y)
    assert batched.model_.steps_per_execution == device.steps_per_execution == 32
    one_by_one = dataclasses.replace(device, steps_per_execution=1)
    monkeypatch.setattr(tasks.training, "detect_device", lambda: one_by_one)
    single = KerasMLPClassifier(epochs=12, patience=3, random_state=0).fit(X, y)
    assert single.model_.steps_per_execution == 1
    assert single.n_epochs_ == batched.n_epochs_ and single.best_epoch_ == batched.best_epoch_
    for ours, theirs in zip(batched.model_.get_weights(), single.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_rows_reach_tensorflow_in_chunks_every_row_once_an_epoch(monkeypatch):
    monkeypatch.setattr(tasks.training, "_CHUNK_BATCHES", 3)  # chunks of 192 rows
    rows = np.arange(1000)
    X = np.column_stack([rows, -rows]).astype("float32")
    epochs = []
    for seed in (5, 5, None):
        batches, follow = tasks.training._chunked_batches(X, rows, 64, shuffle_seed=seed)
        assert len(batches) == 16  # Keras knows the steps of an epoch
        passes = []
        for number in (0, 1):
            follow.on_epoch_begin(number)
            iter(batches)  # a pass begun and dropped changes nothing
            passes.append([b.numpy()[:, 0] for b, _ in batches])
        epochs.append(passes)
    for passes in epochs:
        for batches in passes:
            assert [len(b) for b in batches] == [64] * 15 + [40]
            assert sorted(np.concatenate(batches)) == list(rows)
    shuffled, again, ordered = (
        [np.concatenate(batches) for batches in passes] for passes in epochs
    )
    assert not np.array_equal(shuffled[0], shuffled[1])  # a fresh order each epoch
    np.testing.assert_array_equal(np.stack(shuffled), np.stack(again))  # seeded
    np.testing.assert_array_equal(ordered[0], rows)


@pytest.mark.parametrize("held_rows", [100_000, 100], ids=["rows held", "rows in chunks"])
def test_fits_in_two_threads_at_once_train_the_networks_they_train_alone(
    digits, monkeypatch, held_rows
):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(tasks.training, "_HELD_ROWS", held_rows)
    X, y = digits.drop(columns="target").iloc[:600], digits["target"].iloc[:600]

    def weights(seed):
        return KerasMLPClassifier(epochs=3, random_state=seed).fit(X, y).model_.get_weights()

    alone = [weights(seed) for seed in (0, 1)]
    for _ in range(3):  # as the local sweep's threads do; two of four rounds differed before
        with ThreadPoolExecutor(2) as threads:
            together = list(threads.map(weights, (0, 1)))
        for ours, theirs in zip(alone, together, strict=True):
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(a, b)


def test_a_large_array_learns_from_chunks_and_a_sample_of_its_scaling(digits, monkeypatch):
    monkeypatch.setattr(tasks.training, "_SCALING_ROWS", 500)
    monkeypatch.setattr(tasks.training, "_HELD_ROWS", 500)
    X, y = digits.drop(columns="target"), digits["target"]
    model = KerasMLPClassifier(epochs=15, random_state=1).fit(X.iloc[:1200], y.iloc[:1200])
    scaling = model.model_.get_layer("scaling")
    assert not np.allclose(scaling.mean.numpy().ravel(), X.iloc[:960].mean().to_numpy())
    assert (model.predict(X.iloc[1200:]) == y.iloc[1200:].to_numpy()).mean() > 0.9


def test_a_fit_trains_the_same_network_whatever_the_process_fitted_before(digits):
    X, y = digits.drop(columns="target").iloc[:600], digits["target"].iloc[:600]
    first = KerasMLPClassifier(epochs=3, random_state=0).fit(X, y).model_.get_weights()
    KerasMLPClassifier(epochs=1, random_state=7).fit(X, y)  # as a sweep's worker does
    again = KerasMLPClassifier(epochs=3, random_state=0).fit(X, y).model_.get_weights()
    for ours, theirs in zip(first, again, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_gpu_strategy_trains_in_mixed_precision_with_a_float32_output(
    digits, monkeypatch, tmp_path
):
    monkeypatch.setattr(tasks.training, "detect_device", lambda: choose_strategy("tensorflow", 1))
    X, y = digits.drop(columns="target"), digits["target"]
    model = KerasMLPClassifier(epochs=10, random_state=0).fit(X.iloc[:1200], y.iloc[:1200])
    hidden, output = model.model_.layers[2], model.model_.layers[3]
    assert (hidden.compute_dtype, hidden.variable_dtype) == ("float16", "float32")
    assert output.compute_dtype == "float32"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # only inside the fit
    probabilities = model.predict_proba(X.iloc[1200:])
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (model.predict(X.iloc[1200:]) == y.iloc[1200:].to_numpy()).mean() > 0.9
    serving_network(model.model_).save(tmp_path / "network.keras")  # as the registry saves it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Skipping variable loading for optimizer"
        reloaded = keras.models.load_model(tmp_path / "network.keras")
    assert {layer.compute_dtype for layer in reloaded.layers} == {"float32"}
    assert not reloaded.compiled  # no optimizer state travels with the model
    served = reloaded.predict(X.iloc[1200:], verbose=0)
    np.testing.assert_allclose(served, probabilities, atol=2e-3)  # float16 rounding only
    assert (served.argmax(axis=1) == probabilities.argmax(axis=1)).mean() > 0.99


class _Epochs(keras.callbacks.Callback):
    """Records the epochs a fit runs, and dies like a killed process at ``die_at``."""

    def __init__(self, die_at: int | None = None):
        super().__init__()
        self.die_at = die_at
        self.run: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.die_at:
            raise KeyboardInterrupt
        self.run.append(epoch)


def test_an_interrupted_fit_resumes_from_its_last_epoch(digits, tmp_path):
    X, y = digits.drop(columns="target").iloc[:1200], digits["target"].iloc[:1200]
    checkpoints = tmp_path / "checkpoints"
    first = _Epochs(die_at=4)
    with pytest.raises(KeyboardInterrupt):
        KerasMLPClassifier(epochs=10, patience=50, checkpoint_dir=checkpoints).fit(
            X, y, callbacks=[first]
        )
    assert first.run == [0, 1, 2, 3] and any(checkpoints.iterdir())

    second = _Epochs()
    model = KerasMLPClassifier(epochs=10, patience=50, checkpoint_dir=checkpoints).fit(
        X, y, callbacks=[second]
    )
    assert second.run == [4, 5, 6, 7, 8, 9]
    assert model.n_epochs_ == len(model.history_["val_loss"]) == 10
    # The optimizer's state came back too: its step count spans all ten epochs (960 rows).
    assert int(model.model_.optimizer.iterations.numpy()) == 10 * (960 // 64)
    assert model.history_["loss"][0] > model.history_["loss"][4] > model.history_["loss"][9]
    assert (
        model.predict(digits.drop(columns="target").iloc[1200:]) == digits["target"].iloc[1200:]
    ).mean() > 0.9
    assert not checkpoints.exists()  # a completed fit leaves no backup behind


def _parquet(frame, path, rows_per_group: int):
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=rows_per_group)
    return path


def test_streaming_fit_learns_from_a_parquet_file_by_row_groups(digits, tmp_path):
    frame = digits.assign(target=digits["target"].map(lambda v: f"digit-{v}"))
    path = _parquet(frame.iloc[:1400], tmp_path / "train.parquet", rows_per_group=100)
    seen = _Epochs()
    model = KerasMLPClassifier(epochs=15, random_state=1).fit_parquet(
        path, "target", callbacks=[seen]
    )
    assert list(model.classes_) == [f"digit-{d}" for d in range(10)]
    assert model.n_features_in_ == 64 and model.n_epochs_ == len(seen.run)
    held_out = frame.iloc[1400:]
    accuracy = (model.predict(held_out.drop(columns="target")) == held_out["target"]).mean()
    assert accuracy > 0.9


def test_streaming_fit_needs_somewhere_to_validate(digits, tmp_path):
    path = _parquet(digits, tmp_path / "one_group.parquet", rows_per_group=len(digits))
    with pytest.raises(ValueError, match="validation_path"):
        KerasMLPClassifier(epochs=1).fit_parquet(path, "target")
    validation = _parquet(digits.iloc[:300], tmp_path / "validation.parquet", 100)
    model = KerasMLPClassifier(epochs=2).fit_parquet(path, "target", validation_path=validation)
    assert len(model.history_["val_loss"]) == 2


def test_a_backup_folder_belongs_to_one_fit_at_a_time(tmp_path):
    folder = tmp_path / "job" / "keras_mlp"
    with claimed(folder) as first:
        assert first == folder
        with claimed(folder) as second:  # an identical job at the same moment
            assert second != folder and second.parent == folder.parent
            assert second.is_dir()
        assert not second.exists()  # its private folder goes with it
    with pytest.raises(KeyboardInterrupt), claimed(folder) as again:
        assert again == folder  # released: the next run resumes from the shared one
        again.mkdir()
        (again / "progress.json").touch()
        raise KeyboardInterrupt  # the fit dies: its backups stay for the rerun
    with claimed(folder) as resumed:
        assert resumed == folder and (resumed / "progress.json").exists()
        shutil.rmtree(resumed)  # the fit completes: it removes its backups
    assert not folder.parent.exists()  # nothing left: no lock files, no empty job folders


def test_baselines_fit_on_a_bounded_seeded_sample_of_the_training_rows(digits):
    from tasks.training import build_candidate, fit_candidate

    X, y = digits.drop(columns="target"), digits["target"]
    fitted = [
        fit_candidate(build_candidate("logistic_regression", 1, 0), X, y, X, y, 300, seed=7)
        for _ in range(2)
    ]
    scaler = fitted[0].named_steps["standardscaler"]
    assert scaler.n_samples_seen_ == 300
    np.testing.assert_array_equal(scaler.mean_, fitted[1].named_steps["standardscaler"].mean_)
    whole = fit_candidate(build_candidate("logistic_regression", 1, 0), X, y, X, y, None)
    assert whole.named_steps["standardscaler"].n_samples_seen_ == len(X)
