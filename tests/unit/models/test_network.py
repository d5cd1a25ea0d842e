"""The Keras network behind the scikit-learn estimator API."""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import pytest
from sklearn.base import clone

from tasks.models.architecture import serving_network
from tasks.models.devices import choose_strategy, detect_device
from tasks.models.network import KerasMLPClassifier


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


def test_batches_per_call_leave_the_trained_network_unchanged(digits):
    X, y = digits.drop(columns="target").iloc[:1200], digits["target"].iloc[:1200]
    device = detect_device()
    batched = KerasMLPClassifier(epochs=12, patience=3, random_state=0).fit(X, y)
    assert batched.model_.steps_per_execution == device.steps_per_execution == 32
    one_by_one = dataclasses.replace(device, steps_per_execution=1)
    single = KerasMLPClassifier(epochs=12, patience=3, random_state=0, device=one_by_one).fit(X, y)
    assert single.model_.steps_per_execution == 1
    assert single.n_epochs_ == batched.n_epochs_ and single.best_epoch_ == batched.best_epoch_
    for ours, theirs in zip(batched.model_.get_weights(), single.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("held_rows", [100_000, 100], ids=["rows held", "rows in chunks"])
def test_fits_in_two_threads_at_once_train_the_networks_they_train_alone(digits, held_rows):
    from concurrent.futures import ThreadPoolExecutor

    X, y = digits.drop(columns="target").iloc[:600], digits["target"].iloc[:600]

    def weights(seed):
        network = KerasMLPClassifier(epochs=3, random_state=seed, held_rows=held_rows)
        return network.fit(X, y).model_.get_weights()

    alone = [weights(seed) for seed in (0, 1)]
    for _ in range(3):  # as the local sweep's threads do; two of four rounds differed before
        with ThreadPoolExecutor(2) as threads:
            together = list(threads.map(weights, (0, 1)))
        for ours, theirs in zip(alone, together, strict=True):
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(a, b)


def test_a_large_array_learns_from_chunks_and_a_sample_of_its_scaling(digits):
    X, y = digits.drop(columns="target"), digits["target"]
    network = KerasMLPClassifier(epochs=15, random_state=1, scaling_rows=500, held_rows=500)
    model = network.fit(X.iloc[:1200], y.iloc[:1200])
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


def test_gpu_strategy_trains_in_mixed_precision_with_a_float32_output(digits, tmp_path):
    X, y = digits.drop(columns="target"), digits["target"]
    one_gpu = choose_strategy("tensorflow", 1)
    model = KerasMLPClassifier(epochs=10, random_state=0, device=one_gpu).fit(
        X.iloc[:1200], y.iloc[:1200]
    )
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


def test_the_regressor_learns_in_the_labels_units_with_a_linear_output():
    from sklearn.datasets import load_diabetes

    from tasks.models.network import KerasMLPRegressor

    X, y = load_diabetes(return_X_y=True, as_frame=True, scaled=False)
    model = KerasMLPRegressor(epochs=150, random_state=0).fit(X.iloc[:350], y.iloc[:350])
    layers = [type(layer).__name__ for layer in model.model_.layers]
    assert layers == ["Normalization", "Flatten", "Dense", "Dense", "Rescaling"]
    assert model.model_.loss == "mse" and model.model_.layers[-2].units == 1
    predicted = model.predict(X.iloc[350:])
    assert predicted.shape == (len(X) - 350,)
    assert model.score(X.iloc[350:], y.iloc[350:]) > 0.3  # R2 of a fair linear fit is ~0.45
    served = serving_network(model.model_).predict(X.iloc[350:].to_numpy("float32"), verbose=0)
    np.testing.assert_allclose(served[:, 0], predicted, rtol=1e-5)
