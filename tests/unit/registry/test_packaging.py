"""Model packaging against a real SQLite MLflow store: stored, read back as a user loads it."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from tasks.models.baselines import build_baseline
from tasks.platform.settings import load_settings
from tasks.registry import packaging, tracking


def test_a_logged_model_predicts_from_its_store_what_the_estimator_predicts(home, digits):
    settings = load_settings()
    features = [c for c in digits.columns if c != "target"]
    rows, labels = digits[features].iloc[:600], digits["target"].iloc[:600]
    estimator = build_baseline("logistic_regression", seed=0).fit(rows, labels)
    with tracking.tracking_run(settings, "toy", "toy", {}) as run_id:
        logged = packaging.log_model(settings, run_id, estimator, features, digits.head(5))
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    model = mlflow.pyfunc.load_model(logged.uri)
    classes, probabilities = packaging.class_probabilities(model.predict(rows.head(50)))
    assert list(classes) == [str(d) for d in range(10)]
    np.testing.assert_allclose(probabilities, estimator.predict_proba(rows.head(50)), atol=1e-6)


def test_integer_rows_are_widened_where_the_signature_expects_doubles(stored_model, digits):
    settings, logged = stored_model
    features = [c for c in digits.columns if c != "target"]
    model = packaging.load_model(settings, logged.uri)
    integers = digits[features].head(3).astype("int64")  # a CSV of whole numbers reads so
    widened = packaging.conform(model, integers)
    assert set(widened.dtypes) == {np.dtype("float64")}
    assert list(model.predict(widened)["prediction"]) == list(digits["target"].head(3))


def test_a_mixed_type_network_serves_raw_rows_and_counts_unseen_categories(home):
    from tasks.data.features import FeatureTypes
    from tasks.models.preprocessing import categories, model_input
    from tasks.models.training import build_candidate

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "weight (kg)": rng.normal(70, 10, 400),
            "colour": rng.choice(["red", "green", "blue"], 400),
            "zone": rng.integers(1, 4, 400),  # a category a file holds as numbers
        }
    )
    frame.loc[::9, "weight (kg)"] = np.nan
    target = frame["weight (kg)"].fillna(70) * 2 + frame["colour"].map(
        {"red": 10.0, "green": 0.0, "blue": -10.0}
    )
    types = FeatureTypes(("weight (kg)",), ("colour", "zone"))
    X = model_input(frame, types)
    network = build_candidate("keras_mlp", 30, 0, task="regression", types=types)
    network.fit(X.iloc[:300], target.iloc[:300], validation_data=(X.iloc[300:], target[300:]))
    settings = load_settings()
    with tracking.tracking_run(settings, "toy", "toy", {}) as run_id:
        logged = packaging.log_model(
            settings, run_id, network, types.features, X.head(5), categories(types, X)
        )
    model = packaging.load_model(settings, logged.uri)
    raw = pd.DataFrame({"weight (kg)": [np.nan, 80.0], "colour": ["purple", "red"], "zone": [2, 9]})
    predicted = model.predict(packaging.conform(model, raw))
    assert list(predicted.columns) == ["prediction"]
    np.testing.assert_allclose(
        predicted["prediction"], network.predict(model_input(raw, types)), rtol=1e-4
    )
    assert packaging.unseen_categories(model, raw) == {"colour": 1, "zone": 1}
    summary = packaging.PredictionSummary()
    summary.add(predicted)
    assert set(summary.as_dict()["predicted_summary"]) == {"mean", "min", "max"}
