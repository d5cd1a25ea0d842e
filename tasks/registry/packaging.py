"""Model packaging: a fitted candidate as an MLflow pyfunc model (stored, then read back and
checked), and registered versions loaded for scoring."""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.errors import first_line
from tasks.data.features import CATEGORICAL, NUMERIC
from tasks.models import custom
from tasks.models.custom import CandidateEntry
from tasks.platform.settings import Settings
from tasks.quality.failures import plain_values
from tasks.registry.store import RegistryError, client, failed_write

MODEL_CODE = Path(__file__).with_name("classifier_model.py")
# The MLmodel metadata key of each feature's kind (numeric or categorical): the signature
# signs every feature as `Any` (see `any_inputs`), so the kinds are recorded beside it.
FEATURE_KINDS = "feature_kinds"


def pip_requirements(kind: str) -> list[str]:
    """Pinned requirements of a registered model, so MLflow need not infer them: it would load
    the model in a child process to see what it imports (see docs/decisions.md)."""
    names = ["mlflow", "pandas", "numpy", "scikit-learn"]
    if kind == "keras":
        import keras

        names.append("keras")
        backend = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[
            keras.backend.backend()
        ]
        names.append(
            "tensorflow-cpu"
            if backend == "tensorflow" and _installed("tensorflow-cpu")
            else backend
        )
    else:
        names.append("joblib")
    return [f"{name}=={metadata.version(name)}" for name in names]


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class LoggedModel:
    """A model stored on a run and checked by reading it back; not registered yet. ``example``:
    rows it was signed with, ``predictions``: what it predicts for them."""

    uri: str
    model_id: str
    example: pd.DataFrame
    predictions: pd.DataFrame


def log_model(
    settings: Settings,
    run_id: str,
    estimator: Any,
    features: list[str],
    example: pd.DataFrame,
    categories: dict[str, list[str]] | None = None,
    entry: CandidateEntry | None = None,
) -> LoggedModel:
    """Log the estimator as an MLflow pyfunc model on the run, with a signature from
    ``example`` and pinned requirements; the model is loaded back from the artifact store and
    must predict what the estimator predicts. ``categories``: each categorical feature's
    training values, which the model counts unseen ones against. ``entry``: the user's
    candidate it is, whose code travels with it (MLflow's code_paths) and is imported before
    the model loads (custom Keras layers register themselves then)."""
    import mlflow
    from mlflow.models import ModelSignature, infer_signature

    kind = "keras" if hasattr(estimator, "model_") else "sklearn"
    with tempfile.TemporaryDirectory() as scratch:
        code = custom.code_path(entry) if entry is not None else None
        module = custom.module_name(entry) if code is not None else None
        artifacts = _save_estimator(
            estimator, kind, features, categories or {}, Path(scratch), module
        )
        example = example[features]
        predictions = _predict_frame(estimator, example)
        # The outputs as inferred from the predictions (infer_signature's first argument).
        outputs = infer_signature(predictions).inputs
        signature = ModelSignature(inputs=any_inputs(features), outputs=outputs)
        kinds = {name: CATEGORICAL if name in (categories or {}) else NUMERIC for name in features}
        mlflow.set_tracking_uri(settings.resolved_tracking_uri)
        # log_model writes to the active run only; resume ours, then put its status back.
        try:
            with mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(MODEL_CODE),
                    artifacts=artifacts,
                    signature=signature,
                    metadata={FEATURE_KINDS: kinds},
                    pip_requirements=pip_requirements(kind),
                    code_paths=[str(code)] if code is not None else None,
                )
        except Exception as exc:
            stored = f"could not store the model of run {run_id}: {first_line(exc)}"
            raise failed_write(settings, exc, f"{stored}; nothing registered") from exc
        client(settings).update_run(run_id, status="RUNNING")
    _read_back(info.model_uri, example, predictions)
    return LoggedModel(info.model_uri, info.model_id, example, predictions)


def _read_back(model_uri: str, example: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The stored model, loaded as a user would load it, must give the same predictions."""
    import mlflow

    try:
        stored = mlflow.pyfunc.load_model(model_uri).predict(example)
    except Exception as exc:
        raise RegistryError(
            f"the model stored at {model_uri} cannot be read back: {first_line(exc)}; "
            "nothing registered"
        ) from exc
    if not same_predictions(stored, expected):
        raise RegistryError(
            f"the model read back from {model_uri} predicts differently from the one trained; "
            "nothing registered"
        )


def same_predictions(found: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """Whether a registered model's predictions (``found``, read back or served) are the
    ``expected`` ones: the same labels and probabilities to 1e-5, or the same values of a
    regressor to a relative 1e-4."""
    if found.shape != expected.shape:
        return False
    if is_classification(expected):
        return list(found["prediction"]) == list(expected["prediction"]) and np.allclose(
            found.iloc[:, 1:].to_numpy(dtype=float), expected.iloc[:, 1:].to_numpy(), atol=1e-5
        )
    return np.allclose(found["prediction"], expected["prediction"], rtol=1e-4, atol=1e-5)


def _save_estimator(
    estimator: Any,
    kind: str,
    features: list[str],
    categories: dict,
    folder: Path,
    module: str | None = None,
) -> dict:
    import joblib

    meta = {
        "modules": [module] if module else [],
        "kind": kind,
        "task": "classification" if hasattr(estimator, "classes_") else "regression",
        "features": features,
        "classes": plain_values(getattr(estimator, "classes_", [])),
        "categories": categories,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    artifacts = {"meta": str(folder / "meta.json")}
    if kind == "keras":
        from tasks.models.architecture import serving_network

        path = folder / "network.keras"
        serving_network(estimator.model_).save(path)
        if estimator.encoder_ is not None:
            joblib.dump(estimator.encoder_, folder / "encoder.joblib")
            artifacts["encoder"] = str(folder / "encoder.joblib")
    else:
        path = folder / "estimator.joblib"
        joblib.dump(estimator, path)
    return {**artifacts, "estimator": str(path)}


def is_classification(predictions: pd.DataFrame) -> bool:
    """Whether a registered model's predictions are a classifier's (class probabilities)."""
    return any(c.startswith("probability_") for c in predictions.columns)


def class_probabilities(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The classes and the probability matrix in a registered model's predictions (the
    ``probability_<label>`` columns its pyfunc wrapper writes)."""
    columns = [c for c in predictions.columns if c.startswith("probability_")]
    classes = np.asarray([c.removeprefix("probability_") for c in columns])
    return classes, predictions[columns].to_numpy()


def unseen_categories(model, frame: pd.DataFrame) -> dict[str, int]:
    """Per categorical feature, the rows of ``frame`` with a value the registered model never
    saw in training (none for a version registered before models counted them)."""
    wrapper = model.unwrap_python_model()
    count = getattr(wrapper, "unseen_categories", None)
    return count(frame) if count else {}


@dataclass
class PredictionSummary:
    """What a batch's predictions came to, partition by partition: rows per predicted class
    (a classifier), or their mean and range (a regressor)."""

    counts: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    rows: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, frame: pd.DataFrame) -> None:
        """One partition's predictions (a registered model's output frame)."""
        predictions = frame["prediction"]
        if not is_classification(frame):
            self.rows += len(predictions)
            self.total += float(predictions.sum())
            self.low = min(self.low, float(predictions.min()))
            self.high = max(self.high, float(predictions.max()))
        else:
            self.counts = self.counts.add(predictions.value_counts(), fill_value=0)

    def as_dict(self) -> dict[str, Any]:
        if self.rows:
            mean = self.total / self.rows
            return {"predicted_summary": {"mean": mean, "min": self.low, "max": self.high}}
        return {"predicted_counts": {str(k): int(v) for k, v in self.counts.sort_index().items()}}


def _predict_frame(estimator: Any, frame: pd.DataFrame) -> pd.DataFrame:
    if not hasattr(estimator, "classes_"):
        return pd.DataFrame({"prediction": estimator.predict(frame)})
    probabilities = estimator.predict_proba(frame)
    out = pd.DataFrame(
        probabilities, columns=[f"probability_{label}" for label in estimator.classes_]
    )
    out.insert(0, "prediction", estimator.predict(frame))
    return out


def load_model(settings: Settings, uri: str):
    """A registered model as a pyfunc model whose inputs are checked as their kinds: score
    it on rows passed through `conform`."""
    return _load(settings.resolved_tracking_uri, uri)


def load_version(settings: Settings, name: str, version: str):
    """A registered version as a pyfunc model, loaded once per process: a version never
    changes, so every partition a process (or a Dask worker) scores shares one copy. Its
    inputs are checked as their kinds: score it on rows passed through `conform`."""
    return _load_once(settings.resolved_tracking_uri, f"models:/{name}/{version}")


def any_inputs(features: list[str]):
    """The signature's inputs: each feature by name, as MLflow's `Any`. MLflow enforces a typed
    column strictly: `double` refuses int64 (a CSV of whole numbers), `long` refuses floats
    and gaps, `string` refuses numbers, an empty column and pandas categories; `Any` takes
    them all, and the model's own code reads each feature as its kind (docs/decisions.md)."""
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return Schema([ColSpec(AnyType(), name) for name in features])


def feature_kinds(signature, metadata: dict | None) -> dict[str, str]:
    """Each input of a registered model and its kind (numeric or categorical), in the
    signature's order: recorded beside the signature, or for a version signed before
    (doubles and strings) read from the signature's types."""
    from mlflow.types import DataType

    recorded = (metadata or {}).get(FEATURE_KINDS) or {}
    specs = signature.inputs.inputs if signature is not None else []
    return {
        spec.name: recorded.get(spec.name)
        or (CATEGORICAL if spec.type == DataType.string else NUMERIC)
        for spec in specs
    }


def _checked_as_kinds(model):
    """The loaded model checking its `Any` inputs as their kinds (numbers as doubles,
    categories as text) in this process, whose scoring conforms rows first (`conform`):
    MLflow checks an `Any` column cell by cell in Python (about 1.5 s a million cells), a
    typed one at once."""
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import ColSpec, Schema

    meta = model.metadata
    if not (meta.metadata or {}).get(FEATURE_KINDS) or meta.signature is None:
        return model  # signed with typed columns already (a version of before)
    typed = {NUMERIC: DataType.double, CATEGORICAL: DataType.string}
    kinds = feature_kinds(meta.signature, meta.metadata)
    meta.signature = ModelSignature(
        inputs=Schema([ColSpec(typed[kind], name) for name, kind in kinds.items()]),
        outputs=meta.signature.outputs,
        params=meta.signature.params,
    )
    return model


def conform(model, frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns where the model checks doubles (a CSV of whole numbers) widened to
    float64, and columns it checks as text (categories a file holds as numbers, or a batch
    where one is empty) cast to text: MLflow's schema enforcement refuses to do either
    itself. For a model loaded here (see `_checked_as_kinds`) or signed before `Any`."""
    from mlflow.types import DataType

    from tasks.models.preprocessing import as_text

    schema = model.metadata.get_input_schema()
    specs = schema.inputs if schema else []
    doubles = {c.name for c in specs if c.type == DataType.double}
    texts = [
        c.name
        for c in specs
        if c.type == DataType.string
        and c.name in frame.columns
        and not pd.api.types.is_string_dtype(frame[c.name])
    ]
    integers = [
        c for c in doubles if c in frame.columns and pd.api.types.is_integer_dtype(frame[c])
    ]
    frame = frame.astype(dict.fromkeys(integers, "float64")) if integers else frame
    return frame.assign(**{name: as_text(frame[name]) for name in texts}) if texts else frame


def _load(tracking_uri: str, uri: str):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return _checked_as_kinds(mlflow.pyfunc.load_model(uri))


_load_once = functools.lru_cache(maxsize=4)(_load)
