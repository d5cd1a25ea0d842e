"""Feedback: the labels that arrived for a batch `mlops predict` recorded, joined with its
predictions by key; the batch's production metrics beside the version's test metrics, on an
MLflow run and the version's tags; lost performance announced as an event that retrains."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.runs import FLOW_RUN_TAG, publish_report
from tasks.data import batches, sources
from tasks.evaluation import feedback
from tasks.evaluation.feedback import Feedback, LabelError
from tasks.platform import events
from tasks.platform.settings import Settings, load_settings
from tasks.quality import monitoring
from tasks.registry import store, tracking, versions

logger = logging.getLogger(__name__)
step = task(cache_policy=NO_CACHE)


def find_batch(settings: Settings, model: str, batch: str | None) -> batches.Manifest:
    """The recorded batch named, else the last one the version NAME@ALIAS (champion by
    default) scored."""
    name, _, alias = model.partition("@")
    versions.check_model_name(name)
    if batch is None:
        holder = versions.aliased_version(settings, name, alias or versions.CHAMPION)
        batch = holder.tags.get(monitoring.LAST_BATCH)
        if batch is None:
            raise batches.BatchError(
                f"{name} v{holder.version} has scored no recorded batch: `mlops predict --model "
                f"{model}` records each batch it scores"
            )
    return batches.read_manifest(settings.resolved_artifact_uri, name, batch)


@step(name="judge labels")
def judge_labels(
    settings: Settings, manifest: batches.Manifest, labels_uri: str, id_column: str | None
) -> tuple[Feedback, dict[str, str]]:
    """The labels joined with the batch by key, its production metrics beside the version's
    test metrics; and what a retraining reads (the version's label and training data)."""
    ready = versions.ready_version(settings, manifest.model, manifest.version)
    target = ready.tags.get("target", "target")
    key_column = id_column or manifest.key_column
    labels = feedback.check_labels(sources.load_frame(labels_uri), labels_uri, key_column, target)
    joined = feedback.join(labels, batches.read_parts(manifest), labels_uri)
    if not joined.matched:
        examples = ", ".join(repr(k) for k in labels.index[:3])
        raise LabelError(
            f"none of the {len(labels)} labels of {labels_uri} is of a row of batch "
            f"{manifest.batch} ({key_column!r} such as {examples}; the batch's "
            f"{manifest.rows} rows are keyed by {manifest.key_column!r}): nothing recorded"
        )
    scores = tracking.run_metrics(settings, ready.run_id)
    judged = feedback.assess(
        manifest.model,
        manifest.version,
        manifest.batch,
        joined,
        scores,
        settings.performance_tolerance,
        settings.seed,
        manifest.estimated_metrics,
    )
    data_uri = tracking.run_params(settings, ready.run_id).get("data_uri", "")
    retraining = {
        "labels_uri": labels_uri,
        "target": target,
        "training_data_uri": settings.training_data_uri or data_uri,
    }
    return judged, {key: settings.redact(value) for key, value in retraining.items()}


@step(name="record feedback")
def record_feedback(settings: Settings, judged: Feedback, details: dict[str, str]) -> str | None:
    """The verdict on an MLflow run of `<model>-monitoring` (its id returned; with the plot of
    the version's production metric batch after batch) and on the flow run, on the version's
    `feedback.*` tags, and when degraded as the event whose automation retrains the model."""
    from datetime import UTC, datetime

    from prefect.runtime import flow_run

    name, version = judged.model, judged.version
    experiment, recorded = f"{name}-monitoring", None
    tags = {FLOW_RUN_TAG: str(flow_run.id), "mlops.batch": judged.batch}
    with (
        store.unless_refused(settings, f"The feedback's MLflow run (experiment {experiment})"),
        tracking.tracking_run(settings, experiment, f"feedback-{name}-v{version}", tags) as run_id,
    ):
        params = {
            "model_version": version,
            "batch": judged.batch,
            "labels_uri": details["labels_uri"],
        }
        tracking.log_params(settings, run_id, params)
        tracking.log_metrics(settings, run_id, judged.run_metrics())
        publish_report(settings, run_id, "feedback", judged.to_markdown(), judged.as_dict())
        plot_history(settings, run_id, judged, experiment)
        recorded = run_id
    last = judged.tags(datetime.now(UTC).isoformat(timespec="seconds"))
    with store.unless_refused(settings, f"The feedback on {name} v{version}'s feedback.* tags"):
        versions.set_version_tags(settings, name, version, last)
    events.announce_degraded(judged, details, str(flow_run.id))
    return recorded


def plot_history(settings: Settings, run_id: str, judged: Feedback, experiment: str) -> None:
    """plots/production_<metric>.png on the run: each batch of the version fed back so far
    (this one included), its production metric with its interval, the estimate made before
    its labels, against the test metric and its interval."""
    import tempfile
    from pathlib import Path

    from tasks.evaluation import history

    metric = judged.degradation.metric
    runs = tracking.experiment_runs(
        settings, experiment, f"params.model_version = '{judged.version}'"
    )
    title = f"{judged.model} v{judged.version}: {metric} batch after batch"
    with tempfile.TemporaryDirectory() as scratch:
        path = history.plot_history(
            history.points(runs, metric),
            metric,
            judged.degradation.reference,
            judged.reference_intervals.get(metric),
            title,
            Path(scratch) / f"production_{metric}.png",
        )
        tracking.log_files(settings, run_id, [path], "plots")


@flow(name="feedback")
def feedback_flow(
    labels_uri: str,
    model: str = "digits@champion",
    id_column: str | None = None,
    batch: str | None = None,
) -> dict[str, Any]:
    """Judge a recorded batch by the labels that arrived for it.

    Args:
        labels_uri: The labels: a .csv or .parquet path or S3 key holding the key column and
            the model's label column.
        model: NAME or NAME@ALIAS (champion by default): the version whose last recorded
            batch the labels are of.
        id_column: The labels' key column; default: the batch's (its --id-column, else
            row_id, the position the output of `mlops predict` numbers).
        batch: The batch id `mlops predict` printed; default: the version's last.
    """
    settings = load_settings()
    sources.check_uri(labels_uri)
    manifest = find_batch(settings, model, batch)
    judged, details = judge_labels(settings, manifest, labels_uri, id_column)
    logger.info("%s", judged.counts())
    logger.info("%s", judged.degradation.describe())
    run_id = record_feedback(settings, judged, details)
    return {**judged.as_dict(), "monitoring_run_id": run_id}
