"""`mlops up` / `mlops down`: a Prefect server (API and UI) and an MLflow UI for this home."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.errors import PlatformError
from tasks.settings import Settings


class LocalServerError(PlatformError):
    """A local server did not start, or is not ours to stop."""


@dataclass(frozen=True)
class LocalServers:
    prefect_api_url: str
    prefect_ui_url: str
    mlflow_url: str
    pids: list[int]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(ready, what: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise LocalServerError(f"{what} exited with status {process.returncode}:\n{tail}")
        time.sleep(0.5)
    raise LocalServerError(f"no answer from {what} after {seconds:.0f} s (log: {log})")


def start(settings: Settings, host: str, prefect_port: int, mlflow_port: int) -> LocalServers:
    """Start both servers on loopback, wait until they answer, and note them for later
    commands."""
    if running := settings.running_prefect_api():
        raise LocalServerError(f"already up for this home: Prefect API at {running} (mlops down)")
    logs = settings.home_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    api_url = f"http://{host}:{prefect_port}/api"
    env = settings.subprocess_env(
        drop=("PREFECT_API_URL",),  # the server must not point at itself before it exists
        PREFECT_HOME=str(settings.home_dir / "prefect"),
        PREFECT_UI_API_URL=api_url,  # the UI in the browser calls this, not the default port
    )
    prefect, mlflow = str(bin_dir / "prefect"), str(bin_dir / "mlflow")
    store = settings.resolved_tracking_uri
    commands = {
        "prefect": [prefect, "server", "start", "--host", host, "--port", str(prefect_port)],
        "mlflow": [mlflow, "ui", "--backend-store-uri", store, "--host", host],
    }
    commands["mlflow"] += ["--port", str(mlflow_port)]
    ready = {
        "prefect": lambda: _healthy(f"http://{host}:{prefect_port}/api/health"),
        "mlflow": lambda: _healthy(f"http://{host}:{mlflow_port}/health"),
    }
    processes = {}
    try:
        for name, command in commands.items():
            log = logs / f"{name}.log"
            processes[name] = subprocess.Popen(
                command,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop them
            )
        for name, process in processes.items():
            _wait(ready[name], name, process, logs / f"{name}.log", seconds=120)
    except BaseException:
        _terminate([p.pid for p in processes.values()])
        raise
    servers = LocalServers(
        prefect_api_url=api_url,
        prefect_ui_url=f"http://{host}:{prefect_port}",
        mlflow_url=f"http://{host}:{mlflow_port}",
        pids=[p.pid for p in processes.values()],
    )
    settings.local_servers_file.write_text(json.dumps(asdict(servers), indent=2))
    return servers


def stop(settings: Settings) -> LocalServers | None:
    """Stop the servers `mlops up` started for this home; None if there were none."""
    path = settings.local_servers_file
    if not path.exists():
        return None
    servers = LocalServers(**json.loads(path.read_text()))
    _terminate(servers.pids)
    path.unlink(missing_ok=True)
    return servers


def _terminate(pids: list[int], grace: float = 10.0) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + grace
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                _reap(pid)
            except (ProcessLookupError, ChildProcessError):
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
