"""Batch inference: a registered model scores a checked batch; predictions are written out."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks import data, registry, validation
from tasks.settings import Settings, load_settings

logger = logging.getLogger(__name__)
step = task(cache_policy=NO_CACHE)


@step(name="resolve model")
def resolve_model(settings: Settings, model: str) -> dict[str, str]:
    """NAME or NAME@ALIAS (champion by default) to the version, its suite and its label column."""
    name, _, alias = model.partition("@")
    alias = alias or registry.CHAMPION
    version = registry.alias_holder(settings, name, alias)
    if version is None:
        raise registry.RegistryError(f"{name} has no version with alias {alias!r}")
    tags = registry.ready_version(settings, name, version).tags
    return {
        "name": name,
        "alias": alias,
        "version": version,
        "suite": tags.get("validation_suite", name),
        "target": tags.get("target", "target"),
    }


@step(name="validate input")
def validate_input(settings: Settings, frame: pd.DataFrame, model: dict[str, str]) -> None:
    suite = validation.resolve_suite(model["suite"], settings.suites_dir)
    features = frame.drop(columns=[model["target"]], errors="ignore")  # allowed, not required
    report = validation.validate_frame(features, suite, ignore_columns=(model["target"],))
    if not report.success:
        raise validation.DataValidationError(report)


@step(name="predict")
def predict(settings: Settings, frame: pd.DataFrame, model: dict[str, str]) -> pd.DataFrame:
    loaded = registry.load_model(settings, f"models:/{model['name']}/{model['version']}")
    features = frame.drop(columns=[model["target"]], errors="ignore")
    predictions = loaded.predict(features)
    predictions.insert(0, "row_id", range(len(frame)))
    return predictions


@step(name="write predictions", retries=2, retry_delay_seconds=[1, 5])
def write_predictions(predictions: pd.DataFrame, output_uri: str) -> str:
    return data.write_table(predictions, output_uri)


@flow(name="predict")
def predict_flow(
    data_uri: str = "builtin:digits",
    output_uri: str = "predictions.csv",
    model: str = "digits@champion",
) -> dict[str, Any]:
    """Score a batch with a registered model; the input must pass the model's suite first.

    Args:
        data_uri: Rows to score: builtin:NAME, a .csv or .parquet path; the label may be absent.
        output_uri: Where to write predictions with row ids: a .csv or .parquet path or S3
            key, under an allowed root (MLOPS_OUTPUT_ROOTS; default: the working folder,
            the home and the artifact root).
        model: NAME or NAME@ALIAS of a registered model (champion by default).
    """
    settings = load_settings()
    settings.prepare()
    data.check_uri(data_uri)
    data.check_output_uri(output_uri, settings.allowed_output_roots())
    started = time.perf_counter()
    resolved = resolve_model(settings, model)
    frame = data.load_frame(data_uri)
    validate_input(settings, frame, resolved)
    predictions = predict(settings, frame, resolved)
    written = write_predictions(predictions, output_uri)
    seconds = time.perf_counter() - started
    counts = predictions["prediction"].value_counts().sort_index()
    logger.info(
        "Scored %d rows with %s v%s in %.2f s (%.0f rows/s) -> %s",
        len(predictions),
        resolved["name"],
        resolved["version"],
        seconds,
        len(predictions) / max(seconds, 1e-9),
        written,
    )
    return {
        "model": resolved["name"],
        "version": resolved["version"],
        "alias": resolved["alias"],
        "rows": len(predictions),
        "output": written,
        "seconds": round(seconds, 3),
        "predicted_counts": {str(k): int(v) for k, v in counts.items()},
    }
