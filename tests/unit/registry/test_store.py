"""The tracking store: one writer at a time on an embedded store, and an unreachable server
said plainly."""

from __future__ import annotations

import subprocess
import sys

import requests

from tasks.platform.settings import load_settings
from tasks.registry.store import registry_lock, unreachable

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "w") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


def another_process_can_lock(path) -> bool:
    done = subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)], check=False)
    return done.returncode == 0


def test_the_registry_lock_keeps_out_other_processes_and_lets_its_holder_back_in(home):
    settings = load_settings()
    with registry_lock(settings):
        with registry_lock(settings):  # a step under the lock calls another that takes it
            assert not another_process_can_lock(home / "registry.lock")
        assert not another_process_can_lock(home / "registry.lock")
    assert another_process_can_lock(home / "registry.lock")


def test_an_unreachable_tracking_server_is_named_and_nothing_else_is(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    settings = load_settings()
    try:
        try:
            raise requests.ConnectionError("Connection refused")
        except requests.ConnectionError as cause:
            raise RuntimeError("API request to /api/2.0/mlflow/runs/create failed") from cause
    except RuntimeError as failure:
        message = unreachable(settings, failure)
    assert message.startswith("cannot reach the MLflow tracking server at http://127.0.0.1:9/")
    assert "Nothing was registered" in message
    assert unreachable(settings, ValueError("bad value")) is None
