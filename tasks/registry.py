"""MLflow: tracking runs, logging, model registration, aliases and their tags."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
# A version is created "pending" and marked "complete" once its card, tags and alias are in
# place; a pending version left by a dead process is finished or removed by `repair`.
REGISTRATION, PENDING, COMPLETE = "registration", "pending", "complete"
# On a shared tracking server other hosts may be mid-registration: leave them this long.
ABANDONED_AFTER_SECONDS = 300
# Tags naming the process a run belongs to (see `end_abandoned`).
OWNER_HOST, OWNER_PID, OWNER_STARTED = "mlops.host", "mlops.pid", "mlops.process_started"
MODEL_CODE = Path(__file__).with_name("classifier_model.py")


class RegistryError(Exception):
    """The tracking store or the registry refused or could not do what was asked."""


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    source: str


_READY_STORES: set[str] = set()
_lock_depth = threading.local()


def client(settings: Settings):
    """An MLflow client; the first for an embedded SQLite store also prepares it for sharing."""
    from mlflow import MlflowClient

    uri = settings.resolved_tracking_uri
    if uri.startswith("sqlite:///") and uri not in _READY_STORES:
        _prepare_sqlite(settings, uri)
        _READY_STORES.add(uri)
    return MlflowClient(tracking_uri=uri)


def _prepare_sqlite(settings: Settings, uri: str) -> None:
    """WAL lets readers and a writer share the file; creating the tables under the registry
    lock keeps two first runs in a new home from migrating the same database at once."""
    import sqlite3

    from mlflow import MlflowClient

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with registry_lock(settings):
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


@contextmanager
def registry_lock(settings: Settings) -> Iterator[None]:
    """Serialize registry writes of processes sharing an embedded store (a file lock under the
    home). A tracking server serializes its own writes; there this is a no-op."""
    held = getattr(_lock_depth, "value", 0)
    if held or not settings.resolved_tracking_uri.startswith("sqlite:"):
        _lock_depth.value = held + 1  # re-entered in this thread: already ours
        try:
            yield
        finally:
            _lock_depth.value = held
        return
    import fcntl

    settings.home_dir.mkdir(parents=True, exist_ok=True)
    with (settings.home_dir / "registry.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _lock_depth.value = 1
        try:
            yield
        finally:
            _lock_depth.value = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_model_name(name: str) -> None:
    """Names end up in URIs (models:/NAME@ALIAS) and experiment paths: keep them plain."""
    if not _MODEL_NAME.fullmatch(name):
        raise RegistryError(
            f"invalid model name {name!r}: use up to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


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
            mlflow_client.set_tag(run_id, "mlops.failure", settings.redact(_one_line(exc)))
            mlflow_client.set_terminated(run_id, status="FAILED")
        except Exception as marking:  # the store itself may be what failed: keep the cause
            logger.warning("Could not mark run %s FAILED: %s", run_id, _one_line(marking))
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


def _is_registered(mlflow_client, name: str) -> bool:
    return bool(mlflow_client.search_registered_models(filter_string=f"name = '{name}'"))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


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
    # MLflow infers the schema by testing every value in Python (34 s on 1M rows x 65): the
    # same schema from a sample, each column's nullability from pandas over all the rows,
    # stored where the dataset's cached `schema` property looks first.
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


def code_version() -> str | None:
    """The git commit of the platform's code, where it runs from a checkout."""
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def pip_requirements(kind: str) -> list[str]:
    """Pinned requirements of a registered model, so MLflow need not infer them (~14 s)."""
    names = ["mlflow", "pandas", "numpy", "scikit-learn"]
    if kind == "keras":
        import keras

        names.append("keras")
        backend = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[
            keras.backend.backend()
        ]
        names.append(
            "tensorflow-cpu"
            if backend == "tensorflow" and _installed("tensorflow-cpu")
            else backend
        )
    else:
        names.append("joblib")
    return [f"{name}=={metadata.version(name)}" for name in names]


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def register_model(
    settings: Settings,
    run_id: str,
    name: str,
    estimator: Any,
    features: list[str],
    example: pd.DataFrame,
    tags: dict[str, str],
    description: str,
) -> RegisteredVersion:
    """Log the estimator as an MLflow pyfunc model on the run and register it as a new version.

    The model is loaded back from the artifact store and must predict what the estimator
    predicts before a version is created. The version carries the lineage tags from the
    start, and is ``pending`` until `complete_registration`; if anything after the model was
    logged fails, the half-made version is deleted so the registry never holds it.
    """
    import mlflow
    from mlflow.models import infer_signature

    kind = "keras" if hasattr(estimator, "model_") else "sklearn"
    mlflow_client = client(settings)
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = _save_estimator(estimator, kind, features, Path(scratch))
        # Whole-number features are signed as doubles: a model trained from a CSV of integers
        # then scores float rows too, and `conform` widens integer rows for older versions.
        example = _widened(example[features])
        predictions = _predict_frame(estimator, example)
        signature = infer_signature(example, predictions)
        mlflow.set_tracking_uri(settings.resolved_tracking_uri)
        # log_model writes to the active run only; resume ours, then put its status back.
        try:
            with mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(MODEL_CODE),
                    artifacts=artifacts,
                    signature=signature,
                    pip_requirements=pip_requirements(kind),
                )
        except Exception as exc:
            raise RegistryError(
                f"could not store the model of run {run_id}: {_one_line(exc)}; nothing registered"
            ) from exc
        mlflow_client.update_run(run_id, status="RUNNING")
    _read_back(info.model_uri, example, predictions)
    version = None
    try:
        if not _is_registered(mlflow_client, name):
            mlflow_client.create_registered_model(
                name, description=f"Classifier trained by the mlops training flow ({name})."
            )
        version = mlflow_client.create_model_version(
            name,
            source=info.model_uri,
            run_id=run_id,
            tags={**tags, REGISTRATION: PENDING},
            description=description,
            model_id=info.model_id,
        )
    except Exception as exc:
        if version is not None:
            mlflow_client.delete_model_version(name, version.version)
        raise RegistryError(f"could not register {name}: {_one_line(exc)}") from exc
    logger.info("Registered %s version %s", name, version.version)
    return RegisteredVersion(name, str(version.version), run_id, info.model_uri)


def unreachable(settings: Settings, exc: BaseException) -> str | None:
    """A failure to reach the tracking server, said plainly; None for any other failure."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if isinstance(seen, requests.ConnectionError) or "Max retries exceeded" in text:
            return (
                f"cannot reach the MLflow tracking server at {settings.resolved_tracking_uri} "
                "(retried with backoff): is it running? Nothing was registered and no "
                "alias moved."
            )
        seen = seen.__cause__ or seen.__context__
    return None


def _read_back(model_uri: str, example: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The stored model, loaded as a user would load it, must give the same predictions."""
    import mlflow

    try:
        stored = mlflow.pyfunc.load_model(model_uri).predict(example)
    except Exception as exc:
        raise RegistryError(
            f"the model stored at {model_uri} cannot be read back: {_one_line(exc)}; "
            "nothing registered"
        ) from exc
    same_labels = list(stored["prediction"]) == list(expected["prediction"])
    close = np.allclose(stored.iloc[:, 1:].to_numpy(), expected.iloc[:, 1:].to_numpy(), atol=1e-5)
    if not (same_labels and close):
        raise RegistryError(
            f"the model read back from {model_uri} predicts differently from the one trained; "
            "nothing registered"
        )


def complete_registration(settings: Settings, version: RegisteredVersion) -> None:
    client(settings).set_model_version_tag(version.name, version.version, REGISTRATION, COMPLETE)


def find_job(settings: Settings, name: str, job_key: str):
    """The newest complete, READY version an identical job registered, or None."""
    mlflow_client = client(settings)
    if not _is_registered(mlflow_client, name):
        return None
    found = [
        v
        for v in mlflow_client.search_model_versions(
            f"name = '{name}' and tags.job_key = '{job_key}'"
        )
        if v.status == "READY" and v.tags.get(REGISTRATION) == COMPLETE
    ]
    return max(found, key=lambda v: int(v.version), default=None)


def run_metrics(settings: Settings, run_id: str, prefix: str = "test_") -> dict[str, float]:
    metrics = client(settings).get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(prefix)}


def repair(settings: Settings, name: str) -> list[str]:
    """Finish or undo the registrations a dead process left half-done (call under the lock).

    A pending version that already holds its alias had everything else in place: it is
    marked complete and its run FINISHED. Any other pending version is deleted and its run
    marked FAILED. Returns what was done, one line per version.
    """
    import time

    mlflow_client = client(settings)
    if not _is_registered(mlflow_client, name):
        return []
    embedded = settings.resolved_tracking_uri.startswith("sqlite:")
    cutoff = (time.time() - (0 if embedded else ABANDONED_AFTER_SECONDS)) * 1000
    holders = {str(v): a for a, v in mlflow_client.get_registered_model(name).aliases.items()}
    done = []
    pending = f"name = '{name}' and tags.{REGISTRATION} = '{PENDING}'"
    for version in mlflow_client.search_model_versions(pending):
        number = str(version.version)
        if version.creation_timestamp > cutoff:
            continue
        if number in holders:
            mlflow_client.set_model_version_tag(name, number, REGISTRATION, COMPLETE)
            mlflow_client.set_tag(version.run_id, "mlops.recovered", "registration completed")
            mlflow_client.set_terminated(version.run_id, status="FINISHED")
            done.append(f"v{number}: completed (it already held {holders[number]!r})")
        else:
            mlflow_client.delete_model_version(name, number)
            mlflow_client.set_tag(
                version.run_id,
                "mlops.failure",
                f"abandoned: the process died while registering v{number}; a later run "
                "removed the half-made version",
            )
            mlflow_client.set_terminated(version.run_id, status="FAILED")
            done.append(f"v{number}: removed (its run died while registering it)")
    for line in done:
        logger.warning("Repaired %s %s", name, line)
    return done


def _save_estimator(estimator: Any, kind: str, features: list[str], folder: Path) -> dict:
    meta = {"kind": kind, "features": features, "classes": _plain(estimator.classes_)}
    (folder / "meta.json").write_text(json.dumps(meta))
    if kind == "keras":
        from tasks.training import serving_network

        path = folder / "network.keras"
        serving_network(estimator.model_).save(path)
    else:
        import joblib

        path = folder / "estimator.joblib"
        joblib.dump(estimator, path)
    return {"meta": str(folder / "meta.json"), "estimator": str(path)}


def _predict_frame(estimator: Any, frame: pd.DataFrame) -> pd.DataFrame:
    probabilities = estimator.predict_proba(frame)
    out = pd.DataFrame(
        probabilities, columns=[f"probability_{label}" for label in estimator.classes_]
    )
    out.insert(0, "prediction", estimator.predict(frame))
    return out


def _plain(values) -> list:
    return [v.item() if hasattr(v, "item") else v for v in values]


def read_version_json(settings: Settings, name: str, version: str, artifact_file: str):
    """A JSON artifact of the run behind a registered version; None if it has none."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    run_id = mlflow_client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow_client.download_artifacts(run_id, artifact_file, scratch)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(path).read_text())


def delete_version(settings: Settings, version: RegisteredVersion) -> None:
    client(settings).delete_model_version(version.name, version.version)


def alias_holder(settings: Settings, name: str, alias: str) -> str | None:
    """The version that holds an alias, or None when none does (or the model is new)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(settings).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def load_model(settings: Settings, uri: str):
    return _load(settings.resolved_tracking_uri, uri)


def load_version(settings: Settings, name: str, version: str):
    """A registered version as a pyfunc model, loaded once per process: a version never
    changes, so every partition a process (or a Dask worker) scores shares one copy."""
    return _load_once(settings.resolved_tracking_uri, f"models:/{name}/{version}")


def conform(model, frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns where the model's signature expects doubles (a CSV of whole numbers
    scored by a model trained on floats) widened to float64: MLflow refuses to do it itself."""
    from mlflow.types import DataType

    schema = model.metadata.get_input_schema()
    doubles = {c.name for c in (schema.inputs if schema else []) if c.type == DataType.double}
    return _widened(frame, [c for c in frame.columns if c in doubles])


def _widened(frame: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Integer columns (of `columns`, or all) as float64."""
    names = frame.columns if columns is None else columns
    integers = [c for c in names if pd.api.types.is_integer_dtype(frame[c])]
    return frame.astype(dict.fromkeys(integers, "float64")) if integers else frame


def _load(tracking_uri: str, uri: str):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.pyfunc.load_model(uri)


_load_once = functools.lru_cache(maxsize=4)(_load)


def ready_version(settings: Settings, name: str, version: str):
    """The model version, if it exists and is READY; otherwise a RegistryError saying which."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    if not _is_registered(mlflow_client, name):
        raise RegistryError(f"no registered model named {name!r}")
    try:
        found = mlflow_client.get_model_version(name, str(version))
    except MlflowException:
        known = sorted(
            int(v.version) for v in mlflow_client.search_model_versions(f"name = '{name}'")
        )
        raise RegistryError(
            f"{name} has no version {version} (versions: {', '.join(map(str, known)) or 'none'})"
        ) from None
    if found.status != "READY":
        raise RegistryError(
            f"{name} v{version} is {found.status}, not READY: it cannot hold an alias"
        )
    return found


def assign_alias(
    settings: Settings, name: str, version: str, alias: str, actor: str, reason: str
) -> dict[str, str]:
    """Move an alias to a READY version and write down who, when, why and the previous holder."""
    with registry_lock(settings):
        ready_version(settings, name, version)
        previous = alias_holder(settings, name, alias)
        if previous == str(version):
            raise RegistryError(f"{name} v{version} already holds {alias!r}: nothing to do")
        history = [*_alias_history(settings, name, alias), str(version)]
        return _move_alias(settings, name, alias, str(version), previous, actor, reason, history)


def rollback_alias(settings: Settings, name: str, alias: str, actor: str, reason: str):
    """Give the alias back to the version that held it before the current one."""
    with registry_lock(settings):
        return _rollback(settings, name, alias, actor, reason)


def _rollback(settings: Settings, name: str, alias: str, actor: str, reason: str):
    current = alias_holder(settings, name, alias)
    if current is None:
        raise RegistryError(f"{name} has no {alias!r} to roll back")
    history = _alias_history(settings, name, alias)
    mlflow_client = client(settings)
    while history:
        if history[-1] == current:
            history.pop()
            continue
        try:
            ready_version(settings, name, history[-1])
            break
        except RegistryError:
            history.pop()  # deleted since, or no longer READY: look further back
    if not history:
        raise RegistryError(
            f"{name} has no previous {alias!r} to roll back to (v{current} is the first)"
        )
    target = history[-1]
    now = _now()
    for key, value in {"revoked_by": actor, "revoked_at": now, "revoked_reason": reason}.items():
        mlflow_client.set_model_version_tag(name, current, f"{alias}.{key}", value)
    return _move_alias(
        settings, name, alias, target, current, actor, f"rollback: {reason}", history
    )


def _move_alias(
    settings: Settings,
    name: str,
    alias: str,
    version: str,
    previous: str | None,
    actor: str,
    reason: str,
    history: list[str],
) -> dict[str, str]:
    mlflow_client = client(settings)
    record = {
        "model": name,
        "alias": alias,
        "version": version,
        "previous_version": previous or "none",
        "by": actor,
        "at": _now(),
        "reason": reason[:4000],
    }
    for key in ("by", "at", "reason", "previous_version"):
        mlflow_client.set_model_version_tag(name, version, f"{alias}.{key}", record[key])
    # History before the alias: a crash between the two leaves an entry rollback skips.
    mlflow_client.set_registered_model_tag(name, f"{alias}.history", ",".join(history[-200:]))
    mlflow_client.set_registered_model_alias(name, alias, version)
    logger.info("%s@%s -> v%s (was %s) by %s", name, alias, version, previous or "none", actor)
    return record


def _alias_history(settings: Settings, name: str, alias: str) -> list[str]:
    tags = client(settings).get_registered_model(name).tags
    return [v for v in tags.get(f"{alias}.history", "").split(",") if v]


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def set_version_tags(settings: Settings, name: str, version: str, tags: dict[str, str]) -> None:
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, version, key, value)


def set_run_tags(settings: Settings, run_id: str, tags: dict[str, str]) -> None:
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_tag(run_id, key, value)


def describe_versions(settings: Settings, name: str | None) -> list[dict[str, Any]]:
    """Every version of one model (or of all models): aliases, lineage tags, key metrics."""
    mlflow_client = client(settings)
    if name and not _is_registered(mlflow_client, name):
        raise RegistryError(
            f"no registered model named {name!r} in {settings.resolved_tracking_uri}"
        )
    names = [name] if name else [m.name for m in mlflow_client.search_registered_models()]
    rows = []
    for model_name in names:
        aliases: dict[str, list[str]] = {}
        for alias, version in mlflow_client.get_registered_model(model_name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        for version in mlflow_client.search_model_versions(f"name = '{model_name}'"):
            metrics = mlflow_client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append(
                {
                    "model": model_name,
                    "version": str(version.version),
                    "aliases": sorted(aliases.get(str(version.version), [])),
                    "status": version.status,
                    "run_id": version.run_id,
                    "created": version.creation_timestamp,
                    "family": version.tags.get("model_family"),
                    "tags": dict(version.tags),
                    "metrics": {k: v for k, v in metrics.items() if k.startswith(("test_", "cv_"))},
                }
            )
    return sorted(rows, key=lambda r: (r["model"], int(r["version"])))
