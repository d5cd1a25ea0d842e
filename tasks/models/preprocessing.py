"""Preprocessing of mixed-type features: learned on the training rows, kept inside every
registered model, so that a model predicts from a table as it arrives (text, missing cells,
whole or fractional numbers).

One scikit-learn ``ColumnTransformer`` per candidate, pickled with it:
- the network and the linear baselines read numbers imputed by the training rows' median,
  with a missing-indicator for each column that had gaps in training, and categories one-hot
  encoded; a category unseen in training is all zeros (its out-of-vocabulary bucket), and
  categories past MAX_CATEGORIES are pooled into one "infrequent" column;
- gradient boosting reads numbers as they are (it splits on missing values itself) and
  categories as ordinal codes with its native categorical splits; unseen and missing ones are
  code -1, which it treats as missing.

A table of complete numbers (digits, breast_cancer) needs none of it: its candidates read
the numbers directly, as they always have (``needs_encoding``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.data.features import FeatureTypes, ModelInputs, check_label

# One-hot columns a categorical feature gets at most (the rarest categories share one).
MAX_CATEGORIES = 64
# Ordinal codes of a categorical feature for gradient boosting (its bins hold at most 255).
MAX_CODES = 250
# Rows encoded at a time: the transformer's float64 intermediates stay this small.
ENCODING_ROWS = 65_536


def needs_encoding(types: FeatureTypes, X: pd.DataFrame) -> bool:
    """Whether the features need more than their numbers: categories, or missing numbers."""
    return bool(types.categorical) or bool(X[list(types.numeric)].isna().to_numpy().any())


def as_text(values: pd.Series) -> pd.Series:
    """A categorical column as text, missing cells kept missing: the same category whether a
    file holds it as 3, 3.0 (an integer column with gaps) or "3". The registered model's code
    (classifier_model.py) does the same to what it is asked to predict."""
    if values.dtype == "str":  # pandas' text, missing cells NaN: already so (no copy)
        return values
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("str").where(values.notna())


def model_input(
    frame: pd.DataFrame, types: FeatureTypes, target: str | None = None
) -> pd.DataFrame:
    """The feature columns in the types' order (and the label, given its name), categorical
    ones as text. Columns already so are the frame's own (copy-on-write: no copy)."""
    out = frame[[*types.features, *([target] if target else [])]]
    changed = {}
    for name in types.categorical:
        values = out[name]
        if (text := as_text(values)) is not values:
            changed[name] = text
    return out.assign(**changed) if changed else out


def one_hot_encoder(types: FeatureTypes):
    """Imputed numbers (plus missing-indicators) and one-hot categories, as float32."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    return ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", add_indicator=True), list(types.numeric)),
            (
                "categorical",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=MAX_CATEGORIES,
                    sparse_output=False,
                    dtype=np.float32,
                ),
                list(types.categorical),
            ),
        ],
        sparse_threshold=0,
    )


def ordinal_encoder(types: FeatureTypes):
    """Numbers as they are and categories as codes (-1: missing or unseen), for gradient
    boosting's native categorical support; the mask of which output columns are categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    encoder = ColumnTransformer(
        [
            ("numeric", "passthrough", list(types.numeric)),
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=-1,
                    encoded_missing_value=-1,
                    max_categories=MAX_CODES,
                ),
                list(types.categorical),
            ),
        ],
        sparse_threshold=0,
    )
    return encoder, [False] * len(types.numeric) + [True] * len(types.categorical)


class EncodedRows:
    """Rows of a frame as a fitted encoder's float32 output, encoded when they are taken
    (``rows[positions]``): a network streams its training rows through this, a chunk at a
    time, instead of holding the whole encoded table (one-hot columns make it several times
    the size of the frame)."""

    def __init__(self, encoder, frame: pd.DataFrame):
        self.encoder, self.frame = encoder, frame
        self.shape = (len(frame), encode(encoder, frame.iloc[:1]).shape[1])

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, positions) -> np.ndarray:
        return encode(self.encoder, self.frame.iloc[positions])


def encode(encoder, X: pd.DataFrame) -> np.ndarray:
    """A fitted encoder's output for the rows as float32, ENCODING_ROWS at a time."""
    first = np.asarray(encoder.transform(X.iloc[:ENCODING_ROWS]), dtype="float32")
    if len(X) <= ENCODING_ROWS:
        return first
    out = np.empty((len(X), first.shape[1]), dtype="float32")
    out[:ENCODING_ROWS] = first
    for start in range(ENCODING_ROWS, len(X), ENCODING_ROWS):
        rows = slice(start, start + ENCODING_ROWS)
        out[rows] = encoder.transform(X.iloc[rows])
    return out


def categories(types: FeatureTypes, X: pd.DataFrame) -> dict[str, list[str]]:
    """Each categorical feature's values in the training rows (for counting unseen ones)."""
    return {name: sorted(as_text(X[name]).dropna().unique().tolist()) for name in types.categorical}


def model_frame(frame: pd.DataFrame, target: str, inputs: ModelInputs) -> pd.DataFrame:
    """The rows a job learns from: those with a label, the feature columns (categorical ones
    as text) and the label; the frame's own columns wherever they already are so (a table
    of features in their order, text already pandas' text: the frame itself, no copy)."""
    labelled = check_label(frame[target], inputs.task)
    if not labelled.all():
        frame = frame[labelled.to_numpy()]
    same = [c for c in frame.columns if c != target] == inputs.types.features and all(
        frame[name].dtype == "str" for name in inputs.types.categorical
    )
    return frame if same else model_input(frame, inputs.types, target)
