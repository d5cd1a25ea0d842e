"""Alias moves against a real SQLite MLflow registry: audited, and refused cleanly when wrong."""

from __future__ import annotations

import pytest
from conftest import registry_snapshot
from mlflow import MlflowClient

from tasks.models.baselines import build_baseline
from tasks.platform.settings import load_settings
from tasks.registry import packaging, tracking, versions
from tasks.registry.store import RegistryError


@pytest.fixture
def settings(home):
    return load_settings()


@pytest.fixture
def toy_versions(settings, digits):
    """Three registered versions of a small model, none holding an alias yet."""
    features = [c for c in digits.columns if c != "target"]
    estimator = build_baseline("logistic_regression", seed=0).fit(
        digits[features].iloc[:400], digits["target"].iloc[:400]
    )
    made = []
    for _ in range(3):
        with tracking.tracking_run(settings, "toy", "toy", {}) as run_id:
            model = packaging.log_model(settings, run_id, estimator, features, digits.head(5))
            made.append(versions.create_version(settings, run_id, "toy", model, {}, "toy").version)
    return made


def state(settings) -> dict:
    return registry_snapshot(MlflowClient(settings.resolved_tracking_uri), "toy")


def test_promote_records_who_when_why_and_the_previous_holder(settings, toy_versions):
    versions.assign_alias(settings, "toy", "1", "champion", "alice", "first")
    record = versions.assign_alias(settings, "toy", "2", "champion", "bob", "better")
    assert (record["version"], record["previous_version"], record["by"]) == ("2", "1", "bob")
    tags = MlflowClient(settings.resolved_tracking_uri).get_model_version("toy", "2").tags
    assert tags["champion.by"] == "bob" and tags["champion.reason"] == "better"
    assert tags["champion.previous_version"] == "1" and tags["champion.at"].startswith("20")
    assert versions.alias_holder(settings, "toy", "champion") == "2"


@pytest.mark.parametrize(
    ("model", "version", "message"),
    [
        ("toy", "9", "toy has no version 9 (versions: 1, 2, 3)"),
        ("nope", "1", "no registered model named 'nope'"),
        ("toy", "1", "toy v1 already holds 'champion': nothing to do"),
    ],
)
def test_bad_promotions_are_refused_and_change_nothing(
    settings, toy_versions, model, version, message
):
    versions.assign_alias(settings, "toy", "1", "champion", "alice", "first")
    before = state(settings)
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        versions.assign_alias(settings, model, version, "champion", "mallory", "why not")
    assert state(settings) == before


def test_rollback_returns_champion_to_the_previous_holder(settings, toy_versions):
    for version in ("1", "2", "3"):
        versions.assign_alias(settings, "toy", version, "champion", "ci", f"v{version}")
    record = versions.rollback_alias(settings, "toy", "champion", "oncall", "bad outputs")
    assert (record["version"], record["previous_version"]) == ("2", "3")
    assert record["reason"] == "rollback: bad outputs"
    demoted = MlflowClient(settings.resolved_tracking_uri).get_model_version("toy", "3").tags
    assert demoted["champion.revoked_by"] == "oncall"
    assert versions.rollback_alias(settings, "toy", "champion", "oncall", "again")["version"] == "1"
    before = state(settings)
    with pytest.raises(RegistryError, match="no previous 'champion' to roll back to"):
        versions.rollback_alias(settings, "toy", "champion", "oncall", "once more")
    assert state(settings) == before


def test_rollback_skips_versions_deleted_since(settings, toy_versions):
    for version in ("1", "2", "3"):
        versions.assign_alias(settings, "toy", version, "champion", "ci", f"v{version}")
    MlflowClient(settings.resolved_tracking_uri).delete_model_version("toy", "2")
    assert versions.rollback_alias(settings, "toy", "champion", "oncall", "bad")["version"] == "1"


def test_rollback_without_a_champion_is_refused(settings, toy_versions):
    before = state(settings)
    with pytest.raises(RegistryError, match="toy has no 'champion' to roll back"):
        versions.rollback_alias(settings, "toy", "champion", "oncall", "bad")
    assert state(settings) == before


def test_an_alias_only_moves_to_a_ready_version(settings, toy_versions):
    """A version a tracking server is still registering (its artifacts still copying) cannot
    become champion; the store is put in that state the way such a server leaves it."""
    import sqlite3

    database = settings.resolved_tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE model_versions SET status = 'PENDING_REGISTRATION' WHERE version = 3"
        )
    before = state(settings)
    with pytest.raises(RegistryError, match="toy v3 is PENDING_REGISTRATION, not READY"):
        versions.assign_alias(settings, "toy", "3", "champion", "ci", "eager")
    assert state(settings) == before


def test_repair_finishes_or_removes_what_a_dead_process_left(settings, toy_versions):
    client = MlflowClient(settings.resolved_tracking_uri)
    client.set_model_version_tag("toy", "1", "registration", "complete")
    versions.assign_alias(settings, "toy", "2", "champion", "ci", "moved before the crash")
    runs = {v: client.get_model_version("toy", v).run_id for v in toy_versions}
    for run_id in runs.values():  # a killed process never ends its run
        client.update_run(run_id, status="RUNNING")

    done = versions.repair(settings, "toy")

    assert sorted(done) == [
        "v2: completed (it already held 'champion')",
        "v3: removed (its run died while registering it)",
    ]
    remaining = {str(v.version): v.tags for v in client.search_model_versions("name = 'toy'")}
    assert set(remaining) == {"1", "2"}
    assert remaining["2"]["registration"] == "complete"
    assert client.get_run(runs["2"]).info.status == "FINISHED"
    assert client.get_run(runs["3"]).info.status == "FAILED"
    assert "abandoned" in client.get_run(runs["3"]).data.tags["mlops.failure"]
    assert client.get_run(runs["1"]).info.status == "RUNNING"  # complete: not repair's business
    assert versions.repair(settings, "toy") == []


def test_only_a_complete_version_answers_for_an_identical_job(settings, toy_versions):
    client = MlflowClient(settings.resolved_tracking_uri)
    for version in ("1", "2"):
        client.set_model_version_tag("toy", version, "job_key", "abc")
    assert versions.find_job(settings, "toy", "abc") is None  # both still pending
    client.set_model_version_tag("toy", "1", "registration", "complete")
    assert str(versions.find_job(settings, "toy", "abc").version) == "1"
    assert versions.find_job(settings, "toy", "other") is None
    assert versions.find_job(settings, "unknown", "abc") is None


@pytest.mark.parametrize("name", ["", "a/b", "toy@champion", "-x", "x" * 101, "a b"])
def test_model_names_that_would_break_uris_are_refused(name):
    with pytest.raises(RegistryError, match="invalid model name"):
        versions.check_model_name(name)
