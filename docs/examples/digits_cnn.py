"""A candidate of your own: a small convolutional network that reads builtin:digits' pixels
as 8x8 images. Declared in mlops.yaml beside the example as ``digits_cnn.py:build``.

The platform calls ``build(spec)`` and fits, scores and registers what it returns like its
own families. It hands the model the pixels it kept, in ``spec.input_names`` order
(``pixel_ROW_COL``; the three that are blank in every image are left out), so a fixed layer
puts each back at its place on the grid. Keras alone (no TensorFlow calls): it runs on any
backend.
"""

import keras
import numpy as np

SIDE = 8


def build(spec):
    filters = spec.params.get("filters", 32)
    grid = np.zeros((spec.n_inputs, SIDE * SIDE), dtype="float32")
    for column, name in enumerate(spec.input_names):
        row, col = (int(part) for part in name.split("_")[-2:])
        grid[column, row * SIDE + col] = 1.0

    inputs = keras.Input(shape=(spec.n_inputs,))
    x = keras.layers.Dense(SIDE * SIDE, use_bias=False, trainable=False, name="grid")(inputs)
    x = keras.layers.Reshape((SIDE, SIDE, 1))(x)
    x = keras.layers.Rescaling(1 / 16)(x)  # intensities 0..16
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)  # 4x4
    x = keras.layers.Conv2D(2 * filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)  # 2x2
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(spec.params.get("units", 128), activation="relu")(x)
    x = keras.layers.Dropout(spec.params.get("dropout", 0.3))(x)
    outputs = keras.layers.Dense(spec.n_outputs, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("grid").set_weights([grid])
    return model  # uncompiled: the platform compiles it (Adam 1e-3, cross-entropy)
