"""The code MLflow stores with every registered classifier (MLflow's models-from-code).

MLflow copies this file into the model and runs it when the model is loaded, so it imports
nothing of the platform: a registered model loads wherever MLflow and the model's pip
requirements are installed. Predictions are a DataFrame: ``prediction`` (the class label)
and one ``probability_<label>`` column per class.
"""

import json

import mlflow
import numpy as np
import pandas as pd


class Classifier(mlflow.pyfunc.PythonModel):
    """A fitted Keras network or scikit-learn estimator behind one predict contract."""

    def load_context(self, context):
        with open(context.artifacts["meta"]) as handle:
            meta = json.load(handle)
        self.features = meta["features"]
        self.classes = np.asarray(meta["classes"])
        if meta["kind"] == "keras":
            import keras

            self.network = keras.saving.load_model(context.artifacts["estimator"], safe_mode=True)
            self.estimator = None
        else:
            import joblib

            self.estimator = joblib.load(context.artifacts["estimator"])
            self.network = None

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.features].to_numpy(dtype="float32")
        if self.network is not None:
            # Inference holds no gradients: large batches, far fewer steps than fit's.
            return np.asarray(self.network.predict(values, batch_size=4096, verbose=0))
        return self.estimator.predict_proba(frame[self.features])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        probabilities = self.predict_proba(model_input)
        out = pd.DataFrame(
            probabilities, columns=[f"probability_{label}" for label in self.classes]
        )
        out.insert(0, "prediction", self.classes[np.argmax(probabilities, axis=1)])
        out.index = model_input.index
        return out


mlflow.models.set_model(Classifier())
