"""The result of a training job: one shape for a trained and a skipped job."""

from __future__ import annotations

from types import SimpleNamespace

from tasks.data.features import FeatureTypes, ModelInputs
from tasks.data.snapshots import Snapshot
from tasks.evaluation.promotion import PromotionDecision
from tasks.models.devices import choose_strategy
from tasks.platform.outcomes import CandidateResults, Lineage, TrainingResult
from tasks.quality.drift import DriftReport
from tasks.quality.validation import ValidationReport

SCORES = {"test_accuracy": 0.97, "test_f1_macro": 0.96}


def lineage(git_commit: str | None = "abc123") -> Lineage:
    return Lineage(
        model="digits",
        run_id="run-1",
        flow_run_id="flow-1",
        data_uri="builtin:digits",
        target="target",
        snapshot=Snapshot(sha256="f" * 64, uri="file:///s.parquet", rows=1797, columns=65),
        validation=ValidationReport("digits", True, 10, 0, 1797, []),
        drift=DriftReport.not_checked("no champion yet", 0.2, 0.01),
        device=choose_strategy("tensorflow", 0),
        job_key="job-1",
        git_commit=git_commit,
        inputs=ModelInputs("classification", FeatureTypes(("pixel_0_0",), (), {}), False),
    )


def trained() -> TrainingResult:
    candidates = CandidateResults(
        "keras_mlp", object(), {"keras_mlp": SCORES}, None, {"cv_accuracy_mean": 0.96}, []
    )
    decision = PromotionDecision(True, "champion", "no champion yet", "rule", SCORES, None, None)
    return TrainingResult.trained(lineage(), "1", candidates, decision, "1")


def skipped() -> TrainingResult:
    version = SimpleNamespace(version=1, run_id="run-0", tags={"model_family": "keras_mlp"})
    report = DriftReport.not_checked("identical job skipped", 0.2, 0.01)
    return TrainingResult.skipped_for("digits", version, SCORES, "f" * 64, report, "1")


def test_trained_and_skipped_results_have_the_same_fields():
    done, again = trained().to_json(), skipped().to_json()
    assert set(done) == set(again)
    assert {"model", "version", "run_id", "family", "promoted", "alias", "decision"} <= set(done)
    assert (done["skipped"], again["skipped"]) == (False, True)
    assert (again["version"], again["family"], again["promoted"]) == ("1", "keras_mlp", False)
    assert "already registered v1" in again["decision"] and "--force" in again["decision"]
    assert done["metrics"] == SCORES and done["cross_validation"] == {"cv_accuracy_mean": 0.96}
    assert done["device"]["device"] == "cpu" and done["validation"]["success"] is True
    assert done["task"] == again["task"] == "classification"


def test_lineage_tags_name_the_git_commit_only_when_there_is_one():
    tags = lineage().tags("keras_mlp")
    assert tags["git_commit"] == "abc123" and tags["model_family"] == "keras_mlp"
    assert tags["data_sha256"] == "f" * 64 and tags["validation_success"] == "true"
    assert "git_commit" not in lineage(git_commit=None).tags("keras_mlp")
