"""What a training job produces, typed: the candidates it trained, the lineage a version records,
and the result `mlops train --json` prints (one shape, trained or skipped)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.data.features import ModelInputs
from tasks.data.snapshots import Snapshot
from tasks.evaluation.leakage import Leak
from tasks.evaluation.promotion import PromotionDecision
from tasks.models.custom import CandidateEntry
from tasks.models.devices import DeviceStrategy
from tasks.quality.drift import DriftReport
from tasks.quality.validation import ValidationReport

if TYPE_CHECKING:
    from tasks.evaluation.compression import Compression


@dataclass(frozen=True)
class CandidateResults:
    """The chosen family and its fitted estimator, every candidate's test scores, the chosen
    one's test outputs (class probabilities, or a regressor's predictions), its
    cross-validation (empty when not run), and the families whose fit was reused from a
    crashed run's persisted results."""

    family: str
    estimator: Any
    scores: dict[str, dict[str, float]]
    outputs: Any
    cross_validation: dict[str, float]
    reused: list[str]
    intervals: dict[str, list[float]] = field(default_factory=dict)  # metric -> 95% [low, high]
    explanation: dict[str, Any] = field(default_factory=dict)  # method, metric, features
    slices: list[dict[str, Any]] = field(default_factory=list)  # feature, value, rows, metrics
    compression: Compression | None = None  # its compact file for efficient inference
    failed: dict[str, str] = field(default_factory=dict)  # a user's candidate -> its error
    entry: CandidateEntry | None = None  # the chosen one, when it is the user's own code

    @property
    def chosen_scores(self) -> dict[str, float]:
        return self.scores[self.family]


@dataclass(frozen=True)
class Lineage:
    """Where a new version comes from: what its tags and its model card record."""

    model: str
    run_id: str
    flow_run_id: str
    data_uri: str
    target: str
    snapshot: Snapshot
    validation: ValidationReport
    drift: DriftReport
    device: DeviceStrategy
    job_key: str
    git_commit: str | None
    inputs: ModelInputs
    leaks: tuple[Leak, ...] = ()  # numeric features suspected of giving the label away

    def tags(self, family: str) -> dict[str, str]:
        tags = {
            "data_sha256": self.snapshot.sha256,
            "validation_suite": self.validation.suite,
            "validation_success": str(self.validation.success).lower(),
            "drift_detected": str(self.drift.detected).lower(),
            "flow_run_id": self.flow_run_id,
            "model_family": family,
            "target": self.target,
            "task": self.inputs.task,
            "job_key": self.job_key,
        }
        if self.git_commit:
            tags["git_commit"] = self.git_commit
        return tags


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of one training job, as `mlops train --json` prints it."""

    model: str
    version: str
    run_id: str
    family: str | None
    promoted: bool
    alias: str | None
    decision: str
    champion_version: str | None
    metrics: dict[str, float]
    data_sha256: str
    drift: dict[str, Any]
    skipped: bool
    previous_champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None
    cross_validation: dict[str, float] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    device: dict[str, Any] | None = None
    reused: list[str] = field(default_factory=list)
    task: str | None = None
    metric_intervals: dict[str, list[float]] = field(default_factory=dict)
    promotion: dict[str, Any] | None = None  # rule, test, difference, its interval, p_value
    explanation: dict[str, Any] = field(default_factory=dict)
    slices: list[dict[str, Any]] = field(default_factory=list)
    features: dict[str, Any] | None = None  # numeric, categorical, excluded (column -> why)
    candidates: list[str] = field(default_factory=list)  # those scored, in their order
    failed_candidates: dict[str, str] = field(default_factory=dict)  # name -> its error
    suspected_leaks: list[dict[str, Any]] = field(default_factory=list)  # feature, score

    @classmethod
    def trained(
        cls,
        lineage: Lineage,
        version: str,
        candidates: CandidateResults,
        decision: PromotionDecision,
        champion_version: str | None,
    ) -> TrainingResult:
        return cls(
            model=lineage.model,
            version=version,
            run_id=lineage.run_id,
            family=candidates.family,
            promoted=decision.promote,
            alias=decision.alias,
            decision=decision.reason,
            champion_version=champion_version,
            metrics=candidates.chosen_scores,
            data_sha256=lineage.snapshot.sha256,
            drift=lineage.drift.to_dict(),
            skipped=False,
            previous_champion_version=decision.champion_version,
            champion_metrics=decision.champion,
            cross_validation=candidates.cross_validation,
            validation={"suite": lineage.validation.suite, "success": lineage.validation.success},
            device=asdict(lineage.device),
            reused=candidates.reused,
            task=lineage.inputs.task,
            metric_intervals=candidates.intervals,
            promotion=decision.evidence(),
            explanation=candidates.explanation,
            slices=candidates.slices,
            features=lineage.inputs.types.to_dict(),
            candidates=list(candidates.scores),
            failed_candidates=candidates.failed,
            suspected_leaks=[leak.as_dict() for leak in lineage.leaks],
        )

    @classmethod
    def skipped_for(
        cls,
        model: str,
        version: Any,
        metrics: dict[str, float],
        data_sha256: str,
        drift: DriftReport,
        champion_version: str | None,
    ) -> TrainingResult:
        """An identical job (same data, parameters and code) already registered ``version``
        (an MLflow ModelVersion): nothing was trained. ``metrics`` are its run's, intervals
        (``<metric>_low`` / ``_high``) included."""
        bounds = {
            k for k in metrics if k.endswith(("_low", "_high")) and k.rsplit("_", 1)[0] in metrics
        }
        point = {k: v for k, v in metrics.items() if k not in bounds}
        return cls(
            model=model,
            version=str(version.version),
            run_id=version.run_id,
            family=version.tags.get("model_family"),
            promoted=False,
            alias=None,
            decision=(
                "an identical job (same data sha256, parameters and code) already registered "
                f"v{version.version}: nothing trained; --force retrains"
            ),
            champion_version=champion_version,
            metrics=point,
            data_sha256=data_sha256,
            drift=drift.to_dict(),
            skipped=True,
            metric_intervals={
                k: [metrics[f"{k}_low"], metrics[f"{k}_high"]]
                for k in point
                if f"{k}_low" in metrics
            },
            task=version.tags.get("task", "classification"),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
