"""The model registry: the registration protocol (pending -> complete, and the repair of what a
dead process left), aliases with their audit trail and history, and the versions' listing."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.core.errors import first_line
from tasks.core.parameters import MODEL_NAME_PATTERN, MODEL_NAME_RULE
from tasks.platform.settings import Settings
from tasks.registry.packaging import LoggedModel
from tasks.registry.store import RegistryError, client, is_registered, registry_lock

logger = logging.getLogger(__name__)


CHAMPION, CHALLENGER = "champion", "challenger"
# A version is created "pending" and marked "complete" once its card, tags and alias are in
# place; a pending version left by a dead process is finished or removed by `repair`.
REGISTRATION, PENDING, COMPLETE = "registration", "pending", "complete"
# On a shared tracking server other hosts may be mid-registration: leave them this long.
ABANDONED_AFTER_SECONDS = 300


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    source: str


_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


def check_model_name(name: str) -> None:
    """Names end up in URIs (models:/NAME@ALIAS) and experiment paths: keep them plain."""
    if not _MODEL_NAME.fullmatch(name):
        raise RegistryError(f"invalid model name {name!r}: use {MODEL_NAME_RULE}")


def create_version(
    settings: Settings,
    run_id: str,
    name: str,
    model: LoggedModel,
    tags: dict[str, str],
    description: str,
) -> RegisteredVersion:
    """Register a logged model as a new version of ``name``, with its lineage ``tags`` from
    the start; it is ``pending`` until `complete_registration`, and deleted again if the
    registry fails part-way."""
    mlflow_client = client(settings)
    version = None
    try:
        if not is_registered(mlflow_client, name):
            mlflow_client.create_registered_model(
                name, description=f"Model trained by the mlops training flow ({name})."
            )
        version = mlflow_client.create_model_version(
            name,
            source=model.uri,
            run_id=run_id,
            tags={**tags, REGISTRATION: PENDING},
            description=description,
            model_id=model.model_id,
        )
    except Exception as exc:
        if version is not None:
            mlflow_client.delete_model_version(name, version.version)
        raise RegistryError(f"could not register {name}: {first_line(exc)}") from exc
    logger.info("Registered %s version %s", name, version.version)
    return RegisteredVersion(name, str(version.version), run_id, model.uri)


def complete_registration(settings: Settings, version: RegisteredVersion) -> None:
    client(settings).set_model_version_tag(version.name, version.version, REGISTRATION, COMPLETE)


def find_job(settings: Settings, name: str, job_key: str):
    """The newest complete, READY version an identical job registered, or None."""
    mlflow_client = client(settings)
    if not is_registered(mlflow_client, name):
        return None
    found = [
        v
        for v in mlflow_client.search_model_versions(
            f"name = '{name}' and tags.job_key = '{job_key}'"
        )
        if v.status == "READY" and v.tags.get(REGISTRATION) == COMPLETE
    ]
    return max(found, key=lambda v: int(v.version), default=None)


def repair(settings: Settings, name: str) -> list[str]:
    """Finish or undo the registrations a dead process left half-done (call under the lock).

    A pending version that already holds its alias had everything else in place: it is
    marked complete and its run FINISHED. Any other pending version is deleted and its run
    marked FAILED. Returns what was done, one line per version.
    """
    import time

    mlflow_client = client(settings)
    if not is_registered(mlflow_client, name):
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


def read_version_json(settings: Settings, name: str, version: str, artifact_file: str):
    """A JSON artifact of the run behind a registered version; None if it has none."""
    return read_version_file(
        settings, name, version, artifact_file, lambda path: json.loads(path.read_text())
    )


def read_version_file(
    settings: Settings, name: str, version: str, artifact_file: str, read: Callable[[Path], Any]
):
    """An artifact of the run behind a registered version, as ``read`` makes it of its
    downloaded file; None if it has none."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    run_id = mlflow_client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow_client.download_artifacts(run_id, artifact_file, scratch)
        except (MlflowException, OSError):
            return None
        return read(Path(path))


def delete_version(settings: Settings, version: RegisteredVersion) -> None:
    client(settings).delete_model_version(version.name, version.version)


def alias_holder(settings: Settings, name: str, alias: str) -> str | None:
    """The version that holds an alias, or None when none does (or the model is new)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(settings).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def ready_version(settings: Settings, name: str, version: str):
    """The model version, if it exists and is READY; otherwise a RegistryError saying which."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    if not is_registered(mlflow_client, name):
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


def aliased_version(settings: Settings, name: str, alias: str):
    """The READY version that holds ``alias``; otherwise a RegistryError saying what is missing
    (the model, or a version with that alias)."""
    version = alias_holder(settings, name, alias)
    if version is None:
        if not is_registered(client(settings), name):
            raise RegistryError(f"no registered model named {name!r} (`mlops models` lists them)")
        raise RegistryError(
            f"no version of {name} holds the alias {alias!r} (`mlops models {name}` lists them)"
        )
    return ready_version(settings, name, version)


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


def describe_versions(settings: Settings, name: str | None) -> list[dict[str, Any]]:
    """Every version of one model (or of all models): aliases, lineage tags, key metrics."""
    mlflow_client = client(settings)
    if name and not is_registered(mlflow_client, name):
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
