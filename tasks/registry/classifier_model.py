"""The code MLflow stores with every registered model (MLflow's models-from-code).

MLflow copies this file into the model and runs it when the model is loaded, so it imports
nothing of the platform: a registered model loads wherever MLflow and the model's pip
requirements are installed. It predicts from the feature columns as they arrive (text,
missing cells, whole or fractional numbers; other columns ignored): the preprocessing learned
in training is part of the stored estimator. Predictions are a DataFrame: for a classifier
``prediction`` (the class label) and one ``probability_<label>`` column per class; for a
regressor ``prediction``.
"""

import importlib
import json

import mlflow
import numpy as np
import pandas as pd


def as_text(values: pd.Series) -> pd.Series:
    """A categorical column as text, missing cells kept missing: the cast training applied
    (tasks/models/preprocessing.py, which this file cannot import)."""
    if values.dtype == "str":  # pandas' text, missing cells NaN: already so
        return values
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("str").where(values.notna())


def as_number(values: pd.Series) -> pd.Series:
    """A numeric column as float64, missing cells NaN: whole numbers, fractions and gaps
    arrive alike (the signature signs every feature as `Any`), the estimator reads one."""
    if values.dtype == "float64":
        return values
    try:
        return pd.to_numeric(values).astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {values.name!r} must hold numbers: {exc}") from None


class Classifier(mlflow.pyfunc.PythonModel):
    """A fitted Keras network or scikit-learn estimator behind one predict contract."""

    def load_context(self, context):
        with open(context.artifacts["meta"]) as handle:
            meta = json.load(handle)
        # A user's candidate: its code (beside the model, on the path) imported first.
        for module in meta.get("modules", []):
            importlib.import_module(module)
        self.features = meta["features"]
        self.task = meta.get("task", "classification")
        self.classes = np.asarray(meta.get("classes") or [])
        # Each categorical feature's training values (older versions have none).
        self.categories = {name: set(values) for name, values in meta.get("categories", {}).items()}
        if meta["kind"] == "keras":
            import keras

            self.network = keras.saving.load_model(context.artifacts["estimator"], safe_mode=True)
            self.encoder = None
            if "encoder" in context.artifacts:
                import joblib

                self.encoder = joblib.load(context.artifacts["encoder"])
            self.estimator = None
        else:
            import joblib

            self.estimator = joblib.load(context.artifacts["estimator"])
            self.network = None

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in training's order, categorical ones as text, numeric ones
        as float64."""
        out = frame[self.features].copy()
        for name in self.features:
            out[name] = as_text(out[name]) if name in self.categories else as_number(out[name])
        return out

    def unseen_categories(self, frame: pd.DataFrame) -> dict[str, int]:
        """Per categorical feature, the rows holding a value training never saw (they are
        predicted from the category's out-of-vocabulary bucket)."""
        counts = {}
        for name, known in self.categories.items():
            values = as_text(frame[name]).dropna()
            unseen = int((~values.isin(known)).sum())
            if unseen:
                counts[name] = unseen
        return counts

    def outputs(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities (a classifier) or predictions (a regressor) of the rows."""
        rows = self.inputs(frame)
        if self.network is None:
            model = self.estimator
            return (
                model.predict_proba(rows) if self.task == "classification" else model.predict(rows)
            )
        if self.encoder is not None:
            values = np.asarray(self.encoder.transform(rows), dtype="float32")
        else:
            values = rows.to_numpy(dtype="float32")
        # Inference holds no gradients: large batches, far fewer steps than fit's.
        out = np.asarray(self.network.predict(values, batch_size=4096, verbose=0))
        return out if self.task == "classification" else out[:, 0]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        outputs = self.outputs(model_input)
        if self.task == "classification":
            out = pd.DataFrame(outputs, columns=[f"probability_{label}" for label in self.classes])
            out.insert(0, "prediction", self.classes[np.argmax(outputs, axis=1)])
        else:
            out = pd.DataFrame({"prediction": outputs})
        out.index = model_input.index
        return out


mlflow.models.set_model(Classifier())
