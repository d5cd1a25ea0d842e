"""Alias moves against a real SQLite MLflow registry: audited, and refused cleanly when wrong."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tasks import registry
from tasks.baselines import build_baseline
from tasks.registry import RegistryError
from tasks.settings import load_settings


@pytest.fixture
def settings(home):
    return load_settings()


@pytest.fixture
def versions(settings, digits):
    """Three registered versions of a small model, none holding an alias yet."""
    features = [c for c in digits.columns if c != "target"]
    estimator = build_baseline("logistic_regression", seed=0).fit(
        digits[features].iloc[:400], digits["target"].iloc[:400]
    )
    made = []
    for _ in range(3):
        with registry.tracking_run(settings, "toy", "toy", {}) as run_id:
            made.append(
                registry.register_model(
                    settings, run_id, "toy", estimator, features, digits.head(5), {}, "toy"
                ).version
            )
    return made


def state(settings) -> dict:
    client = MlflowClient(settings.resolved_tracking_uri)
    model = client.get_registered_model("toy")
    versions = client.search_model_versions("name = 'toy'")
    return {
        "aliases": dict(model.aliases),
        "tags": dict(model.tags),
        "versions": {v.version: dict(v.tags) for v in versions},
    }


def test_promote_records_who_when_why_and_the_previous_holder(settings, versions):
    registry.assign_alias(settings, "toy", "1", "champion", "alice", "first")
    record = registry.assign_alias(settings, "toy", "2", "champion", "bob", "better")
    assert (record["version"], record["previous_version"], record["by"]) == ("2", "1", "bob")
    tags = MlflowClient(settings.resolved_tracking_uri).get_model_version("toy", "2").tags
    assert tags["champion.by"] == "bob" and tags["champion.reason"] == "better"
    assert tags["champion.previous_version"] == "1" and tags["champion.at"].startswith("20")
    assert registry.alias_holder(settings, "toy", "champion") == "2"


@pytest.mark.parametrize(
    ("model", "version", "message"),
    [
        ("toy", "9", "toy has no version 9 (versions: 1, 2, 3)"),
        ("nope", "1", "no registered model named 'nope'"),
        ("toy", "1", "toy v1 already holds 'champion': nothing to do"),
    ],
)
def test_bad_promotions_are_refused_and_change_nothing(settings, versions, model, version, message):
    registry.assign_alias(settings, "toy", "1", "champion", "alice", "first")
    before = state(settings)
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.assign_alias(settings, model, version, "champion", "mallory", "why not")
    assert state(settings) == before


def test_rollback_returns_champion_to_the_previous_holder(settings, versions):
    for version in ("1", "2", "3"):
        registry.assign_alias(settings, "toy", version, "champion", "ci", f"v{version}")
    record = registry.rollback_alias(settings, "toy", "champion", "oncall", "bad outputs")
    assert (record["version"], record["previous_version"]) == ("2", "3")
    assert record["reason"] == "rollback: bad outputs"
    demoted = MlflowClient(settings.resolved_tracking_uri).get_model_version("toy", "3").tags
    assert demoted["champion.revoked_by"] == "oncall"
    assert registry.rollback_alias(settings, "toy", "champion", "oncall", "again")["version"] == "1"
    before = state(settings)
    with pytest.raises(RegistryError, match="no previous 'champion' to roll back to"):
        registry.rollback_alias(settings, "toy", "champion", "oncall", "once more")
    assert state(settings) == before


def test_rollback_skips_versions_deleted_since(settings, versions):
    for version in ("1", "2", "3"):
        registry.assign_alias(settings, "toy", version, "champion", "ci", f"v{version}")
    MlflowClient(settings.resolved_tracking_uri).delete_model_version("toy", "2")
    assert registry.rollback_alias(settings, "toy", "champion", "oncall", "bad")["version"] == "1"


def test_rollback_without_a_champion_is_refused(settings, versions):
    before = state(settings)
    with pytest.raises(RegistryError, match="toy has no 'champion' to roll back"):
        registry.rollback_alias(settings, "toy", "champion", "oncall", "bad")
    assert state(settings) == before
