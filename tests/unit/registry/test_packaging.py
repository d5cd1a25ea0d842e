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


def test_a_stored_model_predicts_a_plain_csv_read_of_whole_numbers_gaps_text_and_more(
    home, tmp_path
):
    """What a fresh export of the training table holds, read by `pandas.read_csv` alone:
    integer columns, a float column with gaps (and a holdout of whole numbers in it), text,
    and a column the model never read; MLflow's own `predict` takes it as it is."""
    from mlflow.models import get_model_info

    from tasks.data.features import FeatureTypes
    from tasks.models.preprocessing import categories, model_input
    from tasks.models.training import build_candidate

    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {
            "visits": rng.integers(0, 9, 300),
            "dose": rng.normal(5, 2, 300).round(2),
            "ward": rng.choice(["east", "west", "north"], 300),
        }
    )
    table.loc[::7, "dose"] = np.nan
    label = np.where(table["visits"] + table["dose"].fillna(5) > 9, "high", "low")
    types = FeatureTypes(("visits", "dose"), ("ward",))
    X = model_input(table, types)
    estimator = build_candidate("logistic_regression", 3, 0, types=types).fit(X, label)
    settings = load_settings()
    with tracking.tracking_run(settings, "toy", "toy", {}) as run_id:
        logged = packaging.log_model(
            settings, run_id, estimator, types.features, X.head(5), categories(types, X)
        )
    holdout = table.head(8).assign(dose=[3, 4, 5, 6, 7, 8, 9, 2], note="not a feature")
    holdout.loc[0, "visits"] = 12  # whole numbers beyond training's, still int64
    path = tmp_path / "holdout.csv"
    holdout.to_csv(path, index=False)
    rows = pd.read_csv(path)
    assert pd.api.types.is_integer_dtype(rows["dose"]) and pd.api.types.is_string_dtype(
        rows["ward"]
    )
    expected = estimator.predict(model_input(rows, types))
    predicted = mlflow.pyfunc.load_model(logged.uri).predict(rows)
    assert list(predicted["prediction"]) == list(expected)
    gaps = rows.assign(dose=rows["dose"].where(rows.index % 2 == 0))  # float64 with NaN
    assert len(mlflow.pyfunc.load_model(logged.uri).predict(gaps)) == 8
    # Scored here (`mlops predict`), the rows are conformed and checked as their kinds.
    model = packaging.load_model(settings, logged.uri)
    assert list(model.predict(packaging.conform(model, rows))["prediction"]) == list(expected)
    # The signature names each column; its kind is recorded beside it.
    info = get_model_info(logged.uri)
    assert info.signature.inputs.input_names() == ["visits", "dose", "ward"]
    assert packaging.feature_kinds(info.signature, info.metadata) == {
        "visits": "numeric",
        "dose": "numeric",
        "ward": "categorical",
    }
