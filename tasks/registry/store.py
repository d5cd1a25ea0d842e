"""The MLflow tracking store: a client for it, the lock that serializes registry writes on an
embedded store, and what an unreachable tracking server looks like."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.core.errors import PlatformError, causes
from tasks.platform.settings import Settings

logger = logging.getLogger(__name__)


class RegistryError(PlatformError):
    """The tracking store or the registry refused or could not do what was asked."""


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


def is_registered(mlflow_client, name: str) -> bool:
    return bool(mlflow_client.search_registered_models(filter_string=f"name = '{name}'"))


def unreachable(settings: Settings, exc: BaseException) -> str | None:
    """A failure to reach the tracking server, said plainly; None for any other failure."""
    import requests

    for seen in causes(exc):
        if isinstance(seen, requests.ConnectionError) or "Max retries exceeded" in str(seen):
            return (
                f"cannot reach the MLflow tracking server at {settings.resolved_tracking_uri} "
                "(retried with backoff): is it running? Nothing was registered and no "
                "alias moved."
            )
    return None


# MLflow's own words for a refused REST call (mlflow.utils.rest_utils.verify_rest_response).
_REFUSED = re.compile(r"endpoint (\S+) failed with error code (401|403) != 200")


@contextmanager
def unless_refused(settings: Settings, what: str) -> Iterator[None]:
    """Go on without ``what`` when the tracking server refuses this account the permission to
    write it (403): a record a read-only account may not keep (a reviewer scoring a batch
    leaves no monitoring tags); a warning names what was left out and why. Anything else
    raises."""
    try:
        yield
    except Exception as exc:
        found = [m for seen in causes(exc) if (m := _REFUSED.search(str(seen)))]
        if not found or found[0].group(2) != "403":
            raise
        logger.warning("%s not recorded: %s", what, refused(settings, exc))


def failed_write(settings: Settings, exc: BaseException, otherwise: str) -> RegistryError:
    """A registry write that failed, said in one line: an unreachable or refusing tracking
    server as everywhere else, else ``otherwise``."""
    return RegistryError(unreachable(settings, exc) or refused(settings, exc) or otherwise)


def refused(settings: Settings, exc: BaseException) -> str | None:
    """A tracking server with basic auth that refused this process's account (401: the
    credentials; 403: a permission), said plainly; None for any other failure.

    The platform's alias moves and registrations write nothing before their first refused
    call, so a refusal leaves the registry as it was.
    """
    for seen in causes(exc):
        if found := _REFUSED.search(str(seen)):
            endpoint, status = found.groups()
            server = f"the MLflow tracking server at {settings.resolved_tracking_uri}"
            user = settings.mlflow_tracking_username
            if status == "401":
                return (
                    f"{server} did not accept the credentials of {user or 'anonymous'!r}: check "
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD; nothing was changed"
                )
            model = any(part in endpoint for part in ("registered-models", "model-versions"))
            needed = "MANAGE" if "delete" in endpoint else "EDIT"
            on = "the registered model" if model else "the experiment"
            return (
                f"{server} refused user {user!r} at {endpoint} (403 permission denied): it "
                f"needs {needed} on {on}, and has less (a reviewer's READ lists and loads "
                "models, but moves no alias); nothing was changed"
            )
    return None
