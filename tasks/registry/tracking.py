"""MLflow tracking runs: their life (and the end of those whose process died), and what they log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.errors import first_line
from tasks.platform.settings import Settings
from tasks.registry.store import client

logger = logging.getLogger(__name__)


# Tags naming the process a run belongs to (see `end_abandoned`).
OWNER_HOST, OWNER_PID, OWNER_STARTED = "mlops.host", "mlops.pid", "mlops.process_started"


def experiment_id(settings: Settings, name: str) -> str:
    """The experiment of a model, created with its artifacts under the platform's artifact root."""
    mlflow_client = client(settings)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{settings.resolved_artifact_uri.rstrip('/')}/mlflow/{name}"
    return mlflow_client.create_experiment(name, artifact_location=location)


@contextmanager
def tracking_run(
    settings: Settings, experiment: str, run_name: str, tags: dict[str, str]
) -> Iterator[str]:
    """An MLflow run that ends FINISHED, or FAILED with the reason when the body raises."""
    mlflow_client = client(settings)
    run = mlflow_client.create_run(
        experiment_id(settings, experiment), run_name=run_name, tags={**tags, **_owner_tags()}
    )
    run_id = run.info.run_id
    logger.info("MLflow run %s (%s)", run_id, run_name)
    try:
        yield run_id
    except BaseException as exc:
        try:
            mlflow_client.set_tag(run_id, "mlops.failure", settings.redact(first_line(exc)))
            mlflow_client.set_terminated(run_id, status="FAILED")
        except Exception as marking:  # the store itself may be what failed: keep the cause
            logger.warning("Could not mark run %s FAILED: %s", run_id, first_line(marking))
        raise
    mlflow_client.set_terminated(run_id, status="FINISHED")


def _owner_tags() -> dict[str, str]:
    """The process a run belongs to, so that a later run can tell it died (`end_abandoned`)."""
    import os
    import socket

    import psutil

    return {
        OWNER_HOST: socket.gethostname(),
        OWNER_PID: str(os.getpid()),
        OWNER_STARTED: repr(psutil.Process().create_time()),
    }


def end_abandoned(settings: Settings, experiment: str) -> list[tuple[Any, str]]:
    """Mark FAILED, with why, the runs of ``experiment`` still RUNNING whose process on this
    host is gone (killed, out of memory, the machine restarted); returns them, with why.

    A run ends FINISHED or FAILED by itself unless its process dies; then nothing else would
    end it. Runs of other hosts are left alone: their processes cannot be seen from here.
    """
    import socket

    mlflow_client = client(settings)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return []
    host = socket.gethostname()
    running = mlflow_client.search_runs(
        [found.experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{OWNER_HOST}` = '{host}'",
    )
    ended = []
    for run in running:
        pid = int(run.data.tags[OWNER_PID])
        if _alive(pid, float(run.data.tags[OWNER_STARTED])):
            continue
        why = f"abandoned: its process (pid {pid} on {host}) died before the run ended"
        mlflow_client.set_tag(run.info.run_id, "mlops.failure", why)
        mlflow_client.set_terminated(run.info.run_id, status="FAILED")
        logger.warning("Run %s (%s) marked FAILED: %s", run.info.run_id, run.info.run_name, why)
        ended.append((run, why))
    return ended


def _alive(pid: int, started: float) -> bool:
    """Whether that process still runs (the same one: a pid can be reused)."""
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 1
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process (macOS): it exists, leave its run
        return True


def log_params(settings: Settings, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    client(settings).log_batch(
        run_id, params=[Param(key, str(value)[:6000]) for key, value in params.items()]
    )


def log_metrics(
    settings: Settings, run_id: str, values: dict[str, float], step: int | None = None
) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client(settings).log_batch(
        run_id, metrics=[Metric(key, float(v), now, step or 0) for key, v in values.items()]
    )


def log_fit(settings: Settings, run_id: str, family: str, estimator) -> None:
    """The Keras network's per-epoch curves and the epochs it ran (a baseline has neither)."""
    if hasattr(estimator, "history_"):
        log_history(settings, run_id, family, estimator.history_)
        log_params(settings, run_id, {f"{family}.epochs_run": estimator.n_epochs_})


def log_history(settings: Settings, run_id: str, prefix: str, history: dict[str, list[float]]):
    """Per-epoch curves, one step per epoch, so MLflow draws them as charts."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    entries = [
        Metric(f"{prefix}.{name}", value, now, epoch)
        for name, values in history.items()
        for epoch, value in enumerate(values, start=1)
    ]
    mlflow_client = client(settings)
    for start in range(0, len(entries), 1000):  # the store's batch limit
        mlflow_client.log_batch(run_id, metrics=entries[start : start + 1000])


def log_json(settings: Settings, run_id: str, payload: Any, artifact_file: str) -> None:
    client(settings).log_dict(run_id, payload, artifact_file)


def log_text(settings: Settings, run_id: str, text: str, artifact_file: str) -> None:
    client(settings).log_text(run_id, text, artifact_file)


def log_files(settings: Settings, run_id: str, paths: list[Path], artifact_path: str) -> None:
    mlflow_client = client(settings)
    for path in paths:
        mlflow_client.log_artifact(run_id, str(path), artifact_path)


def log_dataset(
    settings: Settings, run_id: str, frame: pd.DataFrame, name: str, target: str, snapshot
) -> None:
    """The run's input dataset: its schema, the stored snapshot and the sha256 of its rows."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag

    dataset = mlflow.data.from_pandas(
        frame, source=snapshot.uri, targets=target, name=name, digest=snapshot.sha256[:12]
    )
    # MLflow infers the schema by testing every value in Python, too slow for large data
    # (see docs/decisions.md): the same schema from a sample, each column's nullability from
    # pandas over all the rows, stored where the dataset's cached `schema` property looks first.
    dataset.__dict__["schema"] = _frame_schema(frame)
    client(settings).log_inputs(
        run_id,
        datasets=[
            DatasetInput(
                dataset=dataset._to_mlflow_entity(),
                tags=[InputTag("mlflow.data.context", "training")],
            )
        ],
    )


def _frame_schema(frame: pd.DataFrame):
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    nulls = frame.isna().any()
    sampled = infer_signature(frame.head(1000)).inputs
    return Schema([ColSpec(c.type, c.name, required=not nulls[c.name]) for c in sampled.inputs])


def run_metrics(settings: Settings, run_id: str, prefix: str = "test_") -> dict[str, float]:
    metrics = client(settings).get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(prefix)}


def experiment_runs(settings: Settings, experiment: str, filter_string: str) -> list[dict]:
    """The runs of an experiment matching ``filter_string``, oldest first, but those that
    failed: each one's `params` and `metrics` (at most 1,000, the latest)."""
    mlflow_client = client(settings)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = mlflow_client.search_runs(
        [found.experiment_id],
        filter_string,
        max_results=1000,
        order_by=["attributes.start_time DESC"],
    )
    return [
        {"params": run.data.params, "metrics": run.data.metrics}
        for run in reversed(runs)
        if run.info.status not in ("FAILED", "KILLED")
    ]


def run_params(settings: Settings, run_id: str) -> dict[str, str]:
    return client(settings).get_run(run_id).data.params


def set_run_tags(settings: Settings, run_id: str, tags: dict[str, str]) -> None:
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_tag(run_id, key, value)
