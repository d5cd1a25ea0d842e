"""Batch inference: a registered model scores a checked batch; predictions are written out
and recorded (for the labels that arrive later: `mlops feedback`); the batch and its
predictions are checked for drift from the model's own data (monitoring)."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.runners import task_runner
from flows.runs import FLOW_RUN_TAG, publish_report
from tasks.data import batches, sources
from tasks.evaluation import estimation
from tasks.evaluation.feedback import Degradation
from tasks.platform import events
from tasks.platform.settings import Settings, load_settings
from tasks.quality import drift, monitoring, validation
from tasks.quality.monitoring import BatchCheck, BatchTally, Reference
from tasks.registry import packaging, store, tracking, versions
from tasks.registry.packaging import PredictionSummary

logger = logging.getLogger(__name__)
step = task(cache_policy=NO_CACHE)

# Partitions sent to the Dask cluster before the first is written back: enough to keep a few
# workers busy, few enough that memory stays bounded.
_DASK_IN_FLIGHT = 4


@step(name="resolve model")
def resolve_model(settings: Settings, model: str) -> dict[str, str]:
    """NAME or NAME@ALIAS (champion by default) to the version, its suite and its label column."""
    name, _, alias = model.partition("@")
    alias = alias or versions.CHAMPION
    version = versions.alias_holder(settings, name, alias)
    if version is None:
        raise store.RegistryError(f"{name} has no version with alias {alias!r}")
    ready = versions.ready_version(settings, name, version)
    return {
        "name": name,
        "alias": alias,
        "version": version,
        "suite": ready.tags.get("validation_suite", name),
        "target": ready.tags.get("target", "target"),
        "data_uri": tracking.run_params(settings, ready.run_id).get("data_uri", ""),
        "run_id": ready.run_id,
    }


@step(name="read reference")
def read_reference(settings: Settings, model: dict[str, str]) -> Reference:
    """What batches of this version are compared with: its training profile and the profile
    of its predictions on its own test rows; and what estimates a batch's performance, if it
    keeps it (a classifier's calibration, a regressor's loss model)."""
    name, version = model["name"], model["version"]
    performance = versions.read_version_json(settings, name, version, estimation.CALIBRATION_FILE)
    if performance is None:
        performance = versions.read_version_file(
            settings, name, version, estimation.LOSS_MODEL_FILE, estimation.load_loss_model
        )
    return Reference(
        name,
        version,
        versions.read_version_json(settings, name, version, drift.PROFILE_FILE),
        versions.read_version_json(settings, name, version, monitoring.PREDICTIONS_FILE),
        performance,
    )


@step(name="score partition", task_run_name="score rows {start}+")
def score_partition(
    settings: Settings,
    frame: pd.DataFrame,
    model: dict[str, str],
    start: int,
    reference: Reference,
    id_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, int], BatchTally, estimation.Tally]:
    """Check one partition against the model's suite, then predict it; rows are numbered
    from `start`, their place in the whole input, and keyed by ``id_column`` when named (set
    aside first: the suite and the model never see it). Also the rows per categorical
    feature holding a value the model never saw in training (predicted from its unknown
    bucket), and the partition's drift tally against the reference and its tally of the
    estimated performance (both bounded, whatever its rows)."""
    suite = validation.resolve_suite(model["suite"], settings.suites_dir)
    loaded = packaging.load_version(settings, model["name"], model["version"])
    schema = loaded.metadata.get_input_schema()
    names = schema.input_names() if schema else []
    batches.key_column_check(id_column, frame.columns, model["target"], names)
    key = frame[id_column] if id_column else None
    frame = frame.drop(columns=[id_column]) if id_column else frame
    features = frame.drop(columns=[model["target"]], errors="ignore")  # allowed, not required
    report = validation.validate_frame(
        features, suite, ignore_columns=(model["target"],), row_count=False
    )
    if not report.success:
        logger.error("Rows %d-%d fail the suite: nothing written", start, start + len(frame) - 1)
        raise validation.DataValidationError(report)
    conformed = packaging.conform(loaded, features)
    predictions = loaded.predict(conformed)
    counted = monitoring.tally_partition(reference, frame, predictions, settings.seed, start)
    estimated = estimation.tally(reference.performance, predictions, conformed)
    predictions.insert(0, batches.POSITION, range(start, start + len(frame)))
    if key is not None and id_column == batches.POSITION:
        predictions[batches.POSITION] = key.to_numpy()  # the batch's own row ids
    elif key is not None:
        predictions.insert(1, id_column, key.to_numpy())
    return predictions, packaging.unseen_categories(loaded, features), counted, estimated


def scored(
    settings: Settings,
    partitions: Iterator[pd.DataFrame],
    model: dict[str, str],
    reference: Reference,
    id_column: str | None = None,
) -> Iterator[tuple[pd.DataFrame, dict[str, int], BatchTally, estimation.Tally]]:
    """The predictions of each partition, in input order. With MLOPS_DASK_ADDRESS they are
    scored on the cluster, a few partitions in flight at once; here, one after another."""
    in_flight = _DASK_IN_FLIGHT if settings.dask_address else 1
    with task_runner(settings, local_workers=1) as runner:
        pending: deque = deque()
        start = 0
        for frame in partitions:
            parameters = {
                "settings": settings,
                "frame": frame,
                "model": model,
                "start": start,
                "reference": reference,
                "id_column": id_column,
            }
            pending.append(runner.submit(score_partition, parameters))
            start += len(frame)
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@step(name="monitor batch")
def monitor_batch(
    settings: Settings,
    reference: Reference,
    counted: BatchTally,
    rows: int,
    model: dict[str, str],
    data_uri: str,
    batch: str,
    estimate: dict[str, Any] | None = None,
) -> tuple[BatchCheck, str, Degradation | None]:
    """The batch against the version's training profile and its predictions against the
    ones the version made on its test rows: a report on an MLflow run of the prediction (its
    id returned) and on the flow run, the version's tags of its last check, and on drift the
    `mlops.drift.detected` event (whose automation retrains the model). The version's tags
    name its last recorded ``batch``, which `mlops feedback` joins labels with. The batch's
    ``estimate`` judged against the test metric (returned), on the run as `estimated_*`, and
    on a surely worse one `mlops.performance.degraded` marked estimated (whose automation
    retrains the model once a person approves). One step: each step costs a Prefect task
    run's overhead, more than this work on a small batch."""
    from datetime import UTC, datetime

    from prefect.runtime import flow_run

    check = monitoring.check_batch(
        reference, counted, rows, settings.drift_psi_threshold, settings.drift_alpha
    )
    name, version = reference.model, reference.version
    last_check = check.tags(datetime.now(UTC).isoformat(timespec="seconds"))
    last_check[monitoring.LAST_BATCH] = batch
    tags = {FLOW_RUN_TAG: str(flow_run.id), "mlops.data_uri": settings.redact(data_uri)}
    experiment, run_name, recorded = f"{name}-predictions", f"predict-{name}", None
    result = {"drift": check.features.to_dict(), "prediction_drift": check.prediction_drift()}
    test = tracking.run_metrics(settings, model["run_id"]) if estimate else {}
    drop = estimation.judge(estimate, test, settings.performance_tolerance)
    guessed = {f"estimated_{k}": v for k, v in estimation.values(estimate).items()}
    with (
        store.unless_refused(settings, f"The check's MLflow run (experiment {experiment})"),
        tracking.tracking_run(settings, experiment, run_name, tags | last_check) as run_id,
    ):
        tracking.log_params(
            settings, run_id, {"model_version": version, "rows": rows, "batch": batch}
        )
        tracking.log_metrics(settings, run_id, guessed)
        publish_report(settings, run_id, "monitoring", check.to_markdown(), result)
        recorded = run_id
    with store.unless_refused(settings, f"The check on {name} v{version}'s monitor.* tags"):
        versions.set_version_tags(settings, name, version, last_check)
    training_data = settings.training_data_uri or model["data_uri"]
    details = {"data_uri": data_uri, "training_data_uri": training_data, "target": model["target"]}
    redacted = {key: settings.redact(value) for key, value in details.items()}
    events.announce_drift(check, redacted, str(flow_run.id))
    guess = {"batch": batch, "estimated_metrics": estimate, "flow_run_id": str(flow_run.id)}
    events.announce_estimated_drop(name, version, drop, redacted | guess)
    return check, recorded, drop


@flow(name="predict")
def predict_flow(
    data_uri: str = "builtin:digits",
    output_uri: str = "predictions.csv",
    model: str = "digits@champion",
    id_column: str | None = None,
) -> dict[str, Any]:
    """Score a batch with a registered model; the input must pass the model's suite first.

    Large inputs are read, checked and scored MLOPS_PARTITION_ROWS rows at a time (on the Dask
    cluster at MLOPS_DASK_ADDRESS when set), so memory stays bounded; the output appears only
    once every partition passed and was scored. Every batch is recorded under the artifact
    root, a Parquet part per partition (batch id, key, prediction, probabilities, version,
    time), for `mlops feedback` to join the labels that arrive later; its performance is
    estimated meanwhile (a classifier's accuracy from its confidence, a regressor's error
    from its model of its errors), and a surely worse estimate sends the degraded event,
    marked estimated.

    Args:
        data_uri: Rows to score: builtin:NAME, a .csv or .parquet path; the label may be absent.
        output_uri: Where to write predictions with row ids: a .csv or .parquet path or S3
            key, under an allowed root (MLOPS_OUTPUT_ROOTS; default: the working folder,
            the home and the artifact root).
        model: NAME or NAME@ALIAS of a registered model (champion by default).
        id_column: The column that identifies a row (set aside: no feature), which labels
            are joined by; default: the row's position (the output's row_id).
    """
    settings = load_settings()
    sources.check_uri(data_uri)
    sources.check_output_uri(output_uri, settings.allowed_output_roots())
    started = time.perf_counter()
    resolved = resolve_model(settings, model)
    reference = read_reference(settings, resolved)
    partitions = sources.iter_partitions(data_uri, settings.partition_rows)
    summary, unseen, counted = PredictionSummary(), Counter(), BatchTally()
    estimated = estimation.Tally()
    batch = batches.new_batch_id()
    key = id_column or batches.POSITION
    with (
        sources.table_writer(output_uri) as table,
        batches.recording(
            settings.resolved_artifact_uri, resolved["name"], resolved["version"], batch, id_column
        ) as record,
    ):
        for index, (predictions, new, part, guessed) in enumerate(
            scored(settings, partitions, resolved, reference, id_column)
        ):
            table.write(predictions)
            record.write(predictions, predictions[key])
            summary.add(predictions)
            unseen.update(new)
            counted += part
            estimated += guessed
            logger.info("Partition %d scored: %d rows so far", index + 1, table.rows)
        record.manifest.estimated_metrics = estimate = estimated.estimate()
    if unseen:
        logger.warning(
            "Categories never seen in training (predicted from their unknown bucket): %s",
            ", ".join(f"{name}: {rows} rows" for name, rows in unseen.items()),
        )
    seconds = time.perf_counter() - started
    logger.info(
        "Scored %d rows with %s v%s in %.2f s (%.0f rows/s) -> %s",
        table.rows,
        resolved["name"],
        resolved["version"],
        seconds,
        table.rows / max(seconds, 1e-9),
        table.uri,
    )
    logger.info("Batch %s recorded: %s", batch, record.manifest.uri)
    check, monitoring_run, drop = monitor_batch(
        settings, reference, counted, table.rows, resolved, data_uri, batch, estimate
    )
    return {
        "model": resolved["name"],
        "version": resolved["version"],
        "alias": resolved["alias"],
        "rows": table.rows,
        "output": table.uri,
        "batch": batch,
        "batch_uri": settings.redact(record.manifest.uri),
        "id_column": key,
        "estimated_metrics": estimate,
        "estimated_drop": drop.as_dict() | {"summary": drop.describe()} if drop else None,
        "seconds": round(seconds, 3),
        **summary.as_dict(),
        "unseen_categories": dict(unseen),
        "drift": check.features.to_dict(),
        "prediction_drift": check.prediction_drift(),
        "drift_summary": check.summary(),
        "monitoring_run_id": monitoring_run,
    }
