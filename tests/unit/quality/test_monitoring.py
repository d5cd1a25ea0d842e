"""Monitoring of batch predictions: drift of a batch, tallied partition by partition, and of
its predictions; the events and automations it leads to."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tasks.platform import events
from tasks.platform.settings import Settings
from tasks.quality import drift, monitoring, tallies
from tasks.quality.monitoring import BatchTally, Reference

PSI, ALPHA, SEED = 0.2, 0.01, 7


@pytest.fixture(scope="module")
def profile(digits) -> dict:
    return drift.build_profile(digits, "target", 1000, SEED)


def shifted_by_one_column(frame: pd.DataFrame) -> pd.DataFrame:
    """Every image moved one pixel to the right: valid values, another distribution."""
    pixels = [c for c in frame.columns if c != "target"]
    images = frame[pixels].to_numpy().reshape(-1, 8, 8)
    moved = np.roll(images, 1, axis=2)
    moved[:, :, 0] = 0
    return pd.DataFrame(moved.reshape(-1, 64), columns=pixels)


def tallied(reference: Reference, frame: pd.DataFrame, predictions: pd.DataFrame, parts: int):
    """The batch tallied as `mlops predict` does: partition by partition, then added up."""
    total, bounds = BatchTally(), np.linspace(0, len(frame), parts + 1).astype(int)
    for start, end in itertools.pairwise(bounds):
        total += monitoring.tally_partition(
            reference, frame.iloc[start:end], predictions.iloc[start:end], SEED, int(start)
        )
    return total


def no_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"prediction": np.zeros(len(frame))})


def test_a_batch_shifted_by_one_column_drifts_and_a_sample_of_the_training_data_does_not(
    digits, profile
):
    reference = Reference("digits", "3", profile, None)
    moved = shifted_by_one_column(digits)
    check = monitoring.check_batch(
        reference, tallied(reference, moved, no_predictions(moved), 3), len(moved), PSI, ALPHA
    )
    assert check.detected and check.features.detected
    assert len(check.features.drifted) >= 10
    assert "Drift against digits v3" in check.summary()
    assert check.tags("2026-12-03T12:00:00+00:00")["monitor.last_drift_detected"] == "true"

    sample = digits.drop(columns="target").sample(600, random_state=1)
    check = monitoring.check_batch(
        reference, tallied(reference, sample, no_predictions(sample), 2), 600, PSI, ALPHA
    )
    assert not check.detected, check.summary()
    assert check.tags("2026-12-03T12:00:00+00:00")["monitor.last_drifted_features"] == "none"


def test_tallies_of_partitions_add_up_to_the_whole_batch(digits, profile):
    reference = Reference("digits", "3", profile, None)
    rng = np.random.default_rng(SEED)
    whole = tallies.tally(profile, digits, rng)
    parts = tallied(reference, digits, no_predictions(digits), 4).features
    for name, counted in whole.items():
        assert parts[name].rows == counted.rows and parts[name].missing == counted.missing
        assert parts[name].counts.sum() == pytest.approx(counted.counts.sum())
    # the same verdict, partitioned or not, as training-time drift gives on the whole frame
    judged = drift.judge(profile, parts, "v3", PSI, ALPHA)
    assert judged.detected == drift.compare(profile, digits, "v3", PSI, ALPHA, SEED).detected


def test_a_big_batch_keeps_a_bounded_sample_per_number():
    values = pd.DataFrame({"x": np.random.default_rng(1).normal(size=60_000)})
    profile = drift.build_profile(values, "none", 200, SEED)
    reference = Reference("m", "1", profile, None)
    counted = tallied(reference, values, no_predictions(values), 6).features["x"]
    assert counted.rows == 60_000 and counted.counts.sum() == 60_000
    assert counted.sample.size == tallies.NEW_SAMPLE == counted.keys.size
    shifted = drift.judge(
        profile,
        tallied(reference, values + 0.5, no_predictions(values), 6).features,
        "v1",
        PSI,
        ALPHA,
    )
    assert shifted.detected


def test_predictions_skewed_to_one_class_drift_from_the_test_rows():
    classes = np.arange(10)
    balanced = np.eye(10)[np.arange(500) % 10]  # class probabilities, one-hot
    reference = Reference(
        "digits", "3", None, monitoring.prediction_profile(balanced, classes, 200, SEED)
    )
    skewed = pd.DataFrame(
        {"prediction": np.where(np.arange(1797) % 3 == 0, np.arange(1797) % 10, 4)}
    )
    counted = tallied(reference, skewed, skewed, 2)
    check = monitoring.check_batch(reference, counted, len(skewed), PSI, ALPHA)
    assert check.predictions.detected and check.detected and not check.features.checked
    shares = check.prediction_drift()["shares"]
    assert shares["reference"]["4"] == pytest.approx(0.1) and shares["batch"]["4"] > 0.6
    assert "Predictions drifted" in check.summary() and "| 4 | 10.0% |" in check.to_markdown()

    even = pd.DataFrame({"prediction": np.arange(1000) % 10})
    check = monitoring.check_batch(reference, tallied(reference, even, even, 2), 1000, PSI, ALPHA)
    assert not check.predictions.detected


def test_a_regressors_predictions_are_profiled_as_numbers():
    outputs = np.random.default_rng(2).normal(size=400)
    profile = monitoring.prediction_profile(outputs, None, 200, SEED)
    assert profile["columns"]["prediction"]["kind"] == "numeric"
    reference = Reference("prices", "1", None, profile)
    moved = pd.DataFrame({"prediction": outputs + 2})
    check = monitoring.check_batch(reference, tallied(reference, moved, moved, 2), 400, PSI, ALPHA)
    assert check.predictions.detected and check.prediction_drift()["shares"] == {}


def test_a_version_without_profiles_is_reported_unchecked(digits):
    reference = Reference("digits", "1", None, None)
    check = monitoring.check_batch(reference, BatchTally(), 10, PSI, ALPHA)
    assert not check.detected
    assert "keeps no training profile" in check.summary()
    assert "keeps no distribution" in check.summary()


def test_drift_retrains_with_approval_once_per_cooldown_per_model():
    settings = Settings(retrain_cooldown=900, training_data_uri=None)
    deployment = uuid.uuid4()
    automation = events._retrain_on_drift(settings, events.DriftRetraining(None, deployment))
    trigger, (action,) = automation.trigger, automation.actions
    assert trigger.expect == {events.DRIFT_DETECTED, events.PERFORMANCE_DEGRADED}
    assert trigger.for_each == {"mlops.model"}
    assert trigger.threshold == 1 and trigger.within == timedelta(seconds=900)
    assert action.deployment_id == deployment and action.parameters["require_approval"] is True
    assert action.parameters["data_uri"] == "{{ event.payload.training_data_uri }}"
    pinned = Settings(training_data_uri="s3://data/train.parquet")
    (action,) = events._retrain_on_drift(pinned, events.DriftRetraining(None, deployment)).actions
    assert action.parameters["data_uri"] == "s3://data/train.parquet"


def test_a_declared_model_retrains_through_its_own_deployment_with_its_cooldown():
    deployment = uuid.uuid4()
    declared = events.DriftRetraining("churn", deployment, cooldown=120)
    automation = events._retrain_on_drift(Settings(retrain_cooldown=900), declared)
    assert automation.name == "mlops-retrain-on-drift-churn"
    assert automation.trigger.match.root["mlops.model"] == "churn"
    assert automation.trigger.within == timedelta(seconds=120)
    (action,) = automation.actions
    # Its declared data, label and candidates stand: only the approval is asked for.
    assert action.deployment_id == deployment and action.parameters == {"require_approval": True}


def test_the_version_resource_names_model_and_version():
    resource = events.version_resource("digits", "4")
    assert resource["prefect.resource.id"] == "mlops.model.digits.4"
    assert resource["mlops.model"] == "digits" and resource["prefect.resource.name"] == "digits v4"


def test_the_notify_url_is_a_secret():
    settings = Settings(notify_url="https://hooks.example.com/T000/abc?token=sekret")
    assert "token=sekret" not in settings.redact(
        "posting to " + settings.notify_url.get_secret_value()
    )
