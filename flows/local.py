"""Local servers: `mlops up` / `mlops down` (a Prefect server with its UI and an MLflow UI for
this home), and the Prefect API server a command starts for itself when it has none."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.core import processes
from tasks.core.errors import PlatformError
from tasks.platform.settings import Settings


class LocalServerError(PlatformError):
    """A local server did not start, or is not ours to stop."""


@dataclass(frozen=True)
class LocalServers:
    prefect_api_url: str
    prefect_ui_url: str
    mlflow_url: str
    pids: list[int]


def _wait(ready, what: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    if processes.wait_until_ready(ready, process, seconds):
        return
    if process.poll() is not None:
        tail = log.read_text()[-1500:] if log.exists() else ""
        raise LocalServerError(f"{what} exited with status {process.returncode}:\n{tail}")
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
        # MLflow's job runner (about ten huey consumers, ~250 MB each) serves MLflow's GenAI
        # jobs, which the platform never submits: off unless the environment turns it on.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION=os.environ.get(
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"
        ),
    )
    prefect, mlflow = str(bin_dir / "prefect"), str(bin_dir / "mlflow")
    store = settings.resolved_tracking_uri
    commands = {
        "prefect": [prefect, "server", "start", "--host", host, "--port", str(prefect_port)],
        "mlflow": [mlflow, "ui", "--backend-store-uri", store, "--host", host],
    }
    commands["mlflow"] += ["--port", str(mlflow_port)]
    ready = {
        "prefect": lambda: processes.answers(f"http://{host}:{prefect_port}/api/health"),
        "mlflow": lambda: processes.answers(f"http://{host}:{mlflow_port}/health"),
    }
    started = {}
    try:
        for name, command in commands.items():
            log = logs / f"{name}.log"
            started[name] = subprocess.Popen(
                processes.ended_with_this_process(command),  # even if `mlops up` is killed
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop them
            )
        for name, process in started.items():
            _wait(ready[name], name, process, logs / f"{name}.log", seconds=120)
    except BaseException:
        processes.terminate([p.pid for p in started.values()])
        raise
    servers = LocalServers(
        prefect_api_url=api_url,
        prefect_ui_url=f"http://{host}:{prefect_port}",
        mlflow_url=f"http://{host}:{mlflow_port}",
        pids=[p.pid for p in started.values()],
    )
    settings.local_servers_file.write_text(json.dumps(asdict(servers), indent=2))
    return servers


def stop(settings: Settings, grace: float = 10.0) -> LocalServers | None:
    """Stop the servers `mlops up` started for this home; None if there were none."""
    path = settings.local_servers_file
    if not path.exists():
        return None
    servers = LocalServers(**json.loads(path.read_text()))
    processes.terminate(servers.pids, grace)
    path.unlink(missing_ok=True)
    return servers


def wait_until_down(settings: Settings) -> None:
    """Wait while `mlops down` has not stopped the servers; stop them first if interrupted
    (Ctrl-C or SIGTERM), within the seconds a stopped command has."""
    try:
        while settings.local_servers_file.exists():
            time.sleep(0.5)
    finally:
        stop(settings, grace=5)


@contextlib.contextmanager
def command_prefect_api(settings: Settings) -> Iterator[None]:
    """The Prefect API a command's flow runs report to: the configured one (PREFECT_API_URL,
    or `mlops up`'s), else a server of the command's own on a free loopback port.

    That server ends with the command, even one killed by SIGKILL: the kernel sends it
    SIGTERM when its parent dies (Linux's parent-death signal). Prefect's own ephemeral server,
    started the same way but without it, outlives a killed command for ever.
    """
    if settings.resolved_prefect_api_url:
        yield
        return
    port = processes.free_port()
    logs = settings.home_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"prefect-api-{os.getpid()}.log"
    env = settings.subprocess_env(
        drop=("PREFECT_API_URL",),
        PREFECT_UI_ENABLED="0",
        PREFECT__SERVER_EPHEMERAL="1",  # what Prefect sets for its own: no background services
        PREFECT__SERVER_FINAL="1",
    )
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"),
    ]
    with log.open("w") as output:
        server = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            # Started before the command has threads of its own, so a pre-exec hook is safe.
            preexec_fn=_ended_with(os.getpid()) if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
    try:
        url = f"http://127.0.0.1:{port}/api"
        _wait(lambda: processes.answers(f"{url}/health"), "Prefect's API server", server, log, 120)
        settings.use_prefect_api(url)
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log.unlink(missing_ok=True)


def _ended_with(parent: int):
    """What the server's process runs before the server: SIGTERM for it when ``parent`` dies."""

    def die_with_parent() -> None:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was asked for
            os._exit(1)

    return die_with_parent
