"""Failpoints: named places in a run where a test makes the process die or wait.

Crash consistency is only proven by crashing at the worst moments, not at random ones. A
failpoint does nothing unless ``MLOPS_FAILPOINTS`` names it (e.g. ``{"after-register":
"kill"}``): ``kill`` sends the process SIGKILL, as the kernel's OOM killer or a lost node
would; ``pause`` creates ``<home>/failpoints/<name>`` and waits until that file is removed,
so a test can stop a server at exactly that point; ``break`` at ``serve-check`` has MLflow's
scoring server serve a copy of the model whose stored estimator is garbage, so the server
fails as it does on a model that cannot load.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from tasks.platform.settings import Settings

logger = logging.getLogger(__name__)


PAUSE_LIMIT_SECONDS = 300


def point(settings: Settings, name: str) -> None:
    action = settings.failpoints.get(name)
    if action == "kill":
        logger.warning("Failpoint %s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "pause":
        marker = settings.home_dir / "failpoints" / name
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        logger.warning("Failpoint %s: paused until %s is removed", name, marker)
        deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def served_model(settings: Settings, name: str, model_uri: str, folder: Path) -> str:
    """The model URI a serve check serves: ``model_uri``; with ``break`` at ``name``, a copy
    of it under ``folder`` with every stored artifact but its metadata overwritten."""
    if settings.failpoints.get(name) != "break":
        return model_uri
    import mlflow

    logger.warning("Failpoint %s: serving a broken copy of %s", name, model_uri)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    copy = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(folder)))
    for path in (copy / "artifacts").rglob("*"):
        if path.is_file() and path.name != "meta.json":
            path.write_bytes(b"broken by a failpoint")
    return str(copy)
