"""The Keras network behind the scikit-learn estimator API, and the device it trains on."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from tasks.training import CANDIDATES, KerasMLPClassifier, build_candidate, detect_device


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


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    original = KerasMLPClassifier(epochs=3, hidden_units=16)
    copy = clone(original)
    assert copy.get_params() == original.get_params() and not hasattr(copy, "model_")


def test_every_candidate_family_builds():
    assert CANDIDATES == ("keras_mlp", "logistic_regression", "gradient_boosting")
    assert build_candidate("keras_mlp", epochs=7, seed=3).epochs == 7
    assert hasattr(build_candidate("gradient_boosting", epochs=7, seed=3), "fit")


def test_device_names_what_the_backend_sees():
    device = detect_device()
    assert device.backend == "tensorflow"
    assert device.device == ("gpu" if device.accelerators else "cpu")
    assert device.as_params()["device_device"] == device.device
