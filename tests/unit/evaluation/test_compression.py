"""Compact variants: the network's int8 TFLite file, scikit-learn estimators as ONNX."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from tasks.evaluation import compression, scoring
from tasks.models.baselines import build_baseline
from tasks.models.network import KerasMLPClassifier
from tasks.registry import model_card


@pytest.fixture(scope="module")
def rows(digits):
    X, y = digits.drop(columns="target"), digits["target"]
    X = X.loc[:, X.std() > 0]  # as the job leaves out digits' blank pixels
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def network(rows):
    X_train, _, y_train, _ = rows
    return KerasMLPClassifier(epochs=8, random_state=0).fit(X_train, y_train)


def compressed(family, estimator, rows, tmp_path, tolerance=0.01, float_score=None):
    _, X_test, _, y_test = rows
    accuracy = scoring.test_scores(estimator, X_test, y_test)[0]["test_accuracy"]
    return compression.compress(
        family, estimator, X_test, y_test, "test_accuracy",
        accuracy if float_score is None else float_score, tolerance, False, tmp_path,
    )  # fmt: skip


def test_the_int8_network_is_smaller_and_scores_within_the_tolerance(network, rows, tmp_path):
    found, kept = compressed("keras_mlp", network, rows, tmp_path)
    assert found.kept and kept is not None and kept.suffix == ".tflite"
    assert found.size_bytes == kept.stat().st_size < found.float_size_bytes / 2
    assert abs(found.score - found.float_score) <= 0.01
    assert found.float_score > 0.85  # a network that learned something was quantized
    assert found.latency_ms_per_1k > 0 and found.float_latency_ms_per_1k > 0
    # The file alone predicts the network's classes on the test rows.
    _, X_test, _, _ = rows
    probabilities = compression.tflite_runner(kept)(X_test.to_numpy(np.float32))
    agree = network.classes_[probabilities.argmax(axis=1)] == network.predict(X_test)
    assert agree.mean() >= 0.99


def test_a_variant_losing_more_than_the_tolerance_is_not_kept_and_says_why(network, rows, tmp_path):
    found, kept = compressed("keras_mlp", network, rows, tmp_path, float_score=1.0)
    assert kept is None and not found.kept
    assert "loses" in found.reason and "more than the tolerance of 0.01" in found.reason
    recorded = compression.Compression.from_tags(found.tags())  # what export reads back
    assert (recorded.kept, recorded.reason, recorded.size_bytes, recorded.tolerance) == (
        False, found.reason, found.size_bytes, 0.01,
    )  # fmt: skip
    assert recorded.score == pytest.approx(found.score, rel=1e-5)
    card = model_card._compression(found, "digits --version 3")
    assert "not kept, test_accuracy loses" in card and "more than the tolerance" in card
    assert card.endswith(
        "`mlops export digits --version 3 --format keras` writes the float32 network."
    )


def test_no_tensorflow_backend_skips_compression_instead_of_failing(
    network, rows, tmp_path, monkeypatch
):
    monkeypatch.setattr(compression, "_keras_backend", lambda: "jax")
    found, kept = compressed("keras_mlp", network, rows, tmp_path)
    assert kept is None and not found.kept
    assert found.reason == "skipped: Keras runs on jax; a TFLite file is made from TensorFlow's"
    assert found.tags()["compression_kept"] == "false"


@pytest.mark.parametrize("family", ["logistic_regression", "svm", "gradient_boosting"])
def test_onnx_predicts_the_labels_and_probabilities_scikit_learn_does(family, rows, tmp_path):
    X_train, X_test, y_train, _ = rows
    estimator = build_baseline(family, 0).fit(X_train, y_train)
    found, kept = compressed(family, estimator, rows, tmp_path)
    assert found.kept and kept.suffix == ".onnx" and found.score == found.float_score
    probabilities = compression.onnx_runner(kept)(X_test.to_numpy(np.float32))
    np.testing.assert_allclose(probabilities, estimator.predict_proba(X_test), atol=1e-4)
    assert (estimator.classes_[probabilities.argmax(axis=1)] == estimator.predict(X_test)).all()


def test_a_converter_failure_is_recorded_not_raised(rows, tmp_path, monkeypatch):
    import skl2onnx

    def refuse(*args, **kwargs):
        raise ValueError("Unable to create node 'TreeEnsembleClassifier'")

    monkeypatch.setattr(skl2onnx, "to_onnx", refuse)
    X_train, _, y_train, _ = rows
    estimator = build_baseline("logistic_regression", 0).fit(X_train, y_train)
    found, kept = compressed("logistic_regression", estimator, rows, tmp_path)
    assert kept is None and not found.kept
    assert (
        found.reason == "skipped: conversion failed: Unable to create node 'TreeEnsembleClassifier'"
    )


@pytest.mark.parametrize(
    ("family", "asked", "named"),
    [
        ("logistic_regression", "tflite", "logistic_regression models export as onnx, not"),
        ("svm", "keras", "svm models export as onnx, not as keras"),
        ("keras_mlp", "onnx", "keras_mlp models export as tflite or keras, not as onnx"),
    ],
)
def test_a_format_the_family_cannot_take_is_refused_naming_those_it_can(family, asked, named):
    with pytest.raises(compression.ExportRefused, match=named):
        compression.check_format(family, asked)
    compression.check_format(family, compression.formats(family)[0])
