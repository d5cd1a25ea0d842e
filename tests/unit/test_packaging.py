"""Model packaging against a real SQLite MLflow store: stored, read back as a user loads it."""

from __future__ import annotations

import mlflow
import numpy as np

from tasks import packaging, tracking
from tasks.baselines import build_baseline
from tasks.settings import load_settings


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


def test_integer_rows_are_widened_where_the_signature_expects_doubles(home, digits):
    settings = load_settings()
    features = [c for c in digits.columns if c != "target"]
    estimator = build_baseline("logistic_regression", seed=0).fit(
        digits[features].iloc[:400], digits["target"].iloc[:400]
    )
    with tracking.tracking_run(settings, "toy", "toy", {}) as run_id:
        logged = packaging.log_model(settings, run_id, estimator, features, digits.head(5))
    model = packaging.load_model(settings, logged.uri)
    integers = digits[features].head(3).astype("int64")  # a CSV of whole numbers reads so
    widened = packaging.conform(model, integers)
    assert set(widened.dtypes) == {np.dtype("float64")}
    assert list(model.predict(widened)["prediction"]) == list(digits["target"].head(3))
