"""The network itself, in Keras: its layers (normalization, dense blocks, the head of a
classifier or a regressor), compiled for its task; and the float32 copy saved for serving."""

from __future__ import annotations

import numpy as np


def build_network(
    sample: np.ndarray,
    n_classes: int,
    hidden_units: int,
    learning_rate: float,
    steps_per_execution: int = 1,
    seed: int = 0,
    target_scale: tuple[float, float] | None = None,
):
    """The reference network: Flatten, Dense(128, ReLU), Dense(softmax); Adam; sparse CE;
    ``steps_per_execution`` batches per call of the compiled step; initial weights drawn from
    ``seed`` alone (not from the process's global seeds, which fits in other threads move).

    With ``target_scale`` (the label's mean and standard deviation) it is a regression network
    instead: the same shape with one linear output, rescaled to the label's units inside the
    model (so it starts near the mean and serves in the label's units), and mean squared error.

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
            *_head(keras, n_classes, seed + 1, target_scale),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy" if target_scale is None else "mse",
        metrics=["accuracy" if target_scale is None else "mae"],
        steps_per_execution=steps_per_execution,
    )
    return model


def _head(keras, n_classes: int, seed: int, target_scale: tuple[float, float] | None) -> list:
    """Class probabilities, or one number in the label's units."""
    initializer = keras.initializers.GlorotUniform(seed=seed)
    if target_scale is None:
        return [
            keras.layers.Dense(
                n_classes, activation="softmax", dtype="float32", kernel_initializer=initializer
            )
        ]
    mean, std = target_scale
    return [
        keras.layers.Dense(1, dtype="float32", kernel_initializer=initializer),
        keras.layers.Rescaling(scale=std, offset=mean, dtype="float32", name="target_units"),
    ]


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
