"""The training flow's data steps: storage checked, rows loaded and stored as a snapshot,
validated, typed, profiled, checked for drift and split."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from flows.runs import publish_report
from flows.steps import step
from tasks.data import features, snapshots, sources, storage
from tasks.data.features import ModelInputs
from tasks.data.splits import Splits, check_target, split_frame
from tasks.models import preprocessing
from tasks.platform.settings import Settings
from tasks.quality import drift, validation
from tasks.registry import tracking, versions

logger = logging.getLogger(__name__)


@step(name="check storage")
def check_storage(settings: Settings) -> None:
    """Fail before any work when the artifact bucket is missing, unreachable or forbidden."""
    if settings.artifacts_on_s3:
        storage.check_bucket(settings.resolved_artifact_uri)


@step(name="load data")
def load_data(settings: Settings, run_id: str, uri: str, target: str, suite: str) -> pd.DataFrame:
    """The rows, refused with the reason (also as the run's validation report) when they
    cannot be read or lack the label column, before anything is stored."""
    try:
        frame = sources.load_frame(uri)
        check_target(frame, target)
        return frame
    except sources.DataLoadError as exc:
        report = validation.ValidationReport.for_unreadable(suite, str(exc))
        tracking.log_json(settings, run_id, report.to_dict(), "validation/result.json")
        raise


@step(name="snapshot data")
def snapshot_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, uri: str, target: str
) -> snapshots.Snapshot:
    snapshot = snapshots.store_snapshot(frame, settings.resolved_artifact_uri)
    tracking.log_dataset(settings, run_id, frame, uri, target, snapshot)
    tracking.log_params(
        settings, run_id, {"data_sha256": snapshot.sha256, "data_snapshot": snapshot.uri}
    )
    return snapshot


@step(name="validate data")
def validate_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, suite_path: Path
) -> validation.ValidationReport:
    report = validation.validate_frame(frame, suite_path)
    publish_report(settings, run_id, "validation", report.to_markdown(), report.to_dict())
    tracking.set_run_tags(settings, run_id, {"validation_success": str(report.success).lower()})
    if not report.success:
        raise validation.DataValidationError(report)
    return report


@step(name="read feature types")
def read_features(
    settings: Settings,
    run_id: str,
    frame: pd.DataFrame,
    target: str,
    suite_path: Path,
    task: str,
    exclude: list[str],
) -> tuple[ModelInputs, pd.DataFrame]:
    """The task and the feature types (the suite's, else inferred from the rows), on the run;
    and the rows the models learn from (labelled rows, the features, categories as text)."""
    chosen, types = features.resolve_types(
        frame, target, validation.suite_contract(suite_path), task, exclude
    )
    features.check_features(types, frame)
    inputs = ModelInputs(chosen, types, preprocessing.needs_encoding(types, frame))
    tracking.log_params(settings, run_id, inputs.as_params())
    tracking.log_json(settings, run_id, {"task": chosen, **types.to_dict()}, "features/types.json")
    tracking.set_run_tags(settings, run_id, {"task": chosen})
    logger.info("A %s job; features: %s", chosen, types.describe())
    return inputs, preprocessing.model_frame(frame, target, inputs)


@step(name="profile data")
def profile_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, target: str, inputs: ModelInputs
) -> dict:
    """The profile every version keeps of its training data, for later drift checks."""
    profile = drift.build_profile(
        frame, target, settings.drift_sample_rows, settings.seed, inputs.types, inputs.task
    )
    tracking.log_json(settings, run_id, profile, drift.PROFILE_FILE)
    return profile


@step(name="check drift")
def check_drift(
    settings: Settings, run_id: str, model_name: str, frame: pd.DataFrame, mode: str
) -> drift.DriftReport:
    """New data against the champion's training profile; `fail` stops before training."""
    champion = versions.alias_holder(settings, model_name, versions.CHAMPION)
    reference = (
        versions.read_version_json(settings, model_name, champion, drift.PROFILE_FILE)
        if champion
        else None
    )
    if reference is None:
        reason = "no champion yet" if champion is None else f"v{champion} keeps no profile"
        report = drift.DriftReport.not_checked(
            reason, settings.drift_psi_threshold, settings.drift_alpha
        )
    else:
        report = drift.compare(
            reference,
            frame,
            f"champion v{champion}",
            settings.drift_psi_threshold,
            settings.drift_alpha,
            settings.seed,
        )
    plotted = report.drifted[: drift.PLOTTED]
    if plotted:
        with tempfile.TemporaryDirectory() as scratch:
            plots = [
                drift.plot_feature(
                    reference, frame, feature, Path(scratch) / drift.plot_filename(feature.feature)
                )
                for feature in plotted
            ]
            tracking.log_files(settings, run_id, plots, "drift/plots")
    publish_report(settings, run_id, "drift", report.to_markdown(), report.to_dict())
    tracking.set_run_tags(settings, run_id, {"drift_detected": str(report.detected).lower()})
    if report.detected and mode == "fail":
        raise drift.DriftDetectedError(report)
    return report


@step(name="split data")
def split_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, target: str, inputs: ModelInputs
) -> Splits:
    """The sets, whose rows move out of ``frame`` (it ends empty: the rows are not held
    twice at the job's peak)."""
    rows = split_frame(
        frame,
        target,
        settings.test_size,
        settings.validation_size,
        settings.seed,
        inputs.task,
        consume=True,
    )
    sources.release_freed_memory()
    sampled = min(settings.baseline_rows, len(rows.X_train))
    tracking.log_params(settings, run_id, {**rows.sizes(), "baseline_rows": sampled})
    return rows
