"""Preprocessing inside the models: missing numbers, text categories, unseen values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.data.features import FeatureTypes, ModelInputs
from tasks.models import preprocessing

TYPES = FeatureTypes(("weight (kg)",), ("colour",))


def rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "weight (kg)": rng.normal(70, 10, 300),
            "colour": rng.choice(["red", "green", "blue"], 300),
            "label": rng.choice(["yes", "no"], 300),
        }
    )
    frame.loc[::10, "weight (kg)"] = np.nan
    frame.loc[::7, "colour"] = None
    return frame


def test_a_category_is_the_same_whether_a_file_holds_it_as_number_or_text():
    as_float = preprocessing.as_text(pd.Series([3.0, np.nan, 4.0]))
    as_text = preprocessing.as_text(pd.Series(["3", None, "4"]))
    assert as_float.tolist()[::2] == as_text.tolist()[::2] == ["3", "4"]
    assert as_float.isna().tolist() == [False, True, False]


def test_missing_numbers_are_imputed_with_an_indicator_and_unseen_categories_are_zeros():
    frame = rows()
    encoder = preprocessing.one_hot_encoder(TYPES).fit(preprocessing.model_input(frame, TYPES))
    new = pd.DataFrame({"weight (kg)": [np.nan, 80.0], "colour": ["purple", "red"]})
    encoded = preprocessing.encode(encoder, preprocessing.model_input(new, TYPES))
    median = frame["weight (kg)"].median()
    assert encoded[0, :2].tolist() == [np.float32(median), 1.0]  # imputed, flagged missing
    assert encoded[1, :2].tolist() == [80.0, 0.0]
    assert encoded[0, 2:].sum() == 0  # purple: the out-of-vocabulary bucket
    assert encoded[1, 2:].sum() == 1
    assert encoded.dtype == np.float32


def test_encoding_in_chunks_matches_one_pass(monkeypatch):
    frame = preprocessing.model_input(rows(), TYPES)
    encoder = preprocessing.one_hot_encoder(TYPES).fit(frame)
    whole = encoder.transform(frame)
    monkeypatch.setattr(preprocessing, "ENCODING_ROWS", 64)
    np.testing.assert_allclose(preprocessing.encode(encoder, frame), whole)


def test_the_model_frame_keeps_labelled_rows_and_a_plain_table_as_it_is(digits):
    frame = rows()
    frame.loc[3, "label"] = None
    inputs = ModelInputs("classification", TYPES, True)
    prepared = preprocessing.model_frame(frame, "label", inputs)
    assert len(prepared) == len(frame) - 1 and list(prepared.columns) == [*TYPES.features, "label"]
    assert preprocessing.needs_encoding(TYPES, frame)
    plain = FeatureTypes(tuple(c for c in digits.columns if c != "target"), ())
    assert not preprocessing.needs_encoding(plain, digits)
    same = preprocessing.model_frame(digits, "target", ModelInputs("classification", plain, False))
    assert same is digits
    assert preprocessing.categories(TYPES, frame) == {"colour": ["blue", "green", "red"]}


def test_a_network_streams_its_rows_through_the_encoder_alike(monkeypatch):
    from tasks.models.network import KerasMLPClassifier

    frame = preprocessing.model_input(rows(), TYPES)
    labels = (frame["colour"] == "red").map({True: "yes", False: "no"})  # learnable
    fits = []
    for held in (10_000, 100):  # all rows encoded and held, or encoded chunk by chunk
        network = KerasMLPClassifier(
            epochs=30, random_state=0, held_rows=held, encoder=preprocessing.one_hot_encoder(TYPES)
        )
        network.fit(frame[:200], labels[:200], validation_data=(frame[200:], labels[200:]))
        fits.append(network.predict(frame))
    for predicted in fits:
        assert (predicted[200:] == labels[200:].to_numpy()).mean() > 0.9
