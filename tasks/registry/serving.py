"""MLflow's scoring server (`mlflow models serve`) as a subprocess: the one command that users
and the serve check start, and the check a version passes before it takes an alias: served on
a free loopback port, it answers a canary request built from its input example as it
predicts in this process, within a time bound."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from tasks.core import processes
from tasks.core.errors import PlatformError
from tasks.data.features import CATEGORICAL
from tasks.platform.settings import Settings
from tasks.registry.packaging import LoggedModel, feature_kinds, same_predictions

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
POLL_SECONDS = 0.1  # between /ping polls while the server starts (it takes seconds)
# An exception line of a traceback ("pickle.UnpicklingError: invalid load key, 'b'.").
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*")
# What `mlflow models serve` says when the server it started exits: not the server's reason.
_WRAPPER = "returned non zero return code"
_LAUNCHER = Path(__file__).with_name("scoring_launcher.py")


class ServingError(PlatformError):
    """A model MLflow's scoring server cannot serve, or serves differently than it predicts."""


@dataclass(frozen=True)
class ServeCheck:
    """A stored model and the milliseconds its served canary took (None: not checked)."""

    model: LoggedModel
    latency_ms: float | None

    def tags(self) -> dict[str, str]:
        if self.latency_ms is None:
            return {"serve_check": "false"}
        return {"serve_check": "true", "serve_check_latency_ms": f"{self.latency_ms:.1f}"}


def serve_command(model_uri: str, host: str, port: int) -> list[str]:
    """`mlflow models serve` of this environment for a model, with one worker, in this
    environment (`--env-manager local`: the model's pinned requirements are installed here;
    the default would build a virtualenv, from the internet)."""
    mlflow = Path(sys.executable).with_name("mlflow")
    return [
        *(str(mlflow), "models", "serve", "-m", model_uri, "--env-manager", "local"),
        *("--host", host, "--port", str(port), "--workers", "1"),
    ]


def server_env(settings: Settings) -> dict[str, str]:
    """This environment (the artifact store's credentials with it), the tracking store that
    resolves ``models:/`` URIs, and this environment's bin/ first on PATH: the server runs
    `uvicorn` by name."""
    env = settings.subprocess_env(MLFLOW_TRACKING_URI=settings.resolved_tracking_uri)
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    return env


def request_body(frame: pd.DataFrame) -> str:
    """The rows as the scoring server's JSON (``{"dataframe_split": ...}``), as MLflow writes
    a model's serving input example."""
    from mlflow.models import convert_input_example_to_serving_input

    return convert_input_example_to_serving_input(frame)


def example_request(settings: Settings, model_uri: str) -> str:
    """A request body of one row for the model: its signature's columns, numbers 0,
    categories empty text (what to replace with real values)."""
    import mlflow

    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    info = mlflow.models.get_model_info(model_uri)
    kinds = feature_kinds(info.signature, info.metadata)
    row = {name: ["" if kind == CATEGORICAL else 0] for name, kind in kinds.items()}
    return json.dumps(json.loads(request_body(pd.DataFrame(row))), separators=(",", ":"))


def serve(settings: Settings, model_uri: str, host: str, port: int) -> int:
    """Run MLflow's scoring server for the model in the foreground, its output ours, until it
    exits (its exit status) or this command is stopped: its process group (it runs uvicorn as
    a child) then ends with it, even if this command is killed."""
    sys.stdout.flush()
    sys.stderr.flush()
    command = processes.ended_with_this_process(serve_command(model_uri, host, port))
    server = subprocess.Popen(command, env=server_env(settings), start_new_session=True)
    try:
        return server.wait()
    finally:
        processes.terminate([server.pid], grace=3)
        server.wait()


def check(
    settings: Settings,
    model: LoggedModel,
    seconds: float,
    served_uri: str | None = None,
    warm: WarmServer | None = None,
) -> ServeCheck:
    """Serve the model (``served_uri``, default its own; by ``warm`` if it waits) and send its
    input example; the answer must be what the model predicts in this process, all within
    ``seconds``."""
    uri = served_uri or model.uri
    deadline = time.monotonic() + seconds
    with scoring_server(settings, uri, seconds, warm) as url:
        answer, latency_ms = canary(url, model.example, max(deadline - time.monotonic(), 1))
    if not same_predictions(answer, model.predictions):
        raise ServingError(
            f"MLflow's scoring server answered the canary for {uri} with other predictions "
            "than the model gives in process; nothing registered"
        )
    logger.info("Served by MLflow's scoring server: canary answered in %.0f ms", latency_ms)
    return ServeCheck(model, latency_ms)


@dataclass
class WarmServer:
    """A scoring server's process, its imports done, waiting for the model to serve (see
    scoring_launcher.py), and the file its output goes to."""

    process: subprocess.Popen
    output: IO[str]

    def serve(self, model_uri: str, port: int) -> bool:
        """Hand it the model; False when it is no longer waiting (it exited)."""
        if self.process.poll() is not None:
            return False
        request = {"model_uri": model_uri, "host": LOOPBACK, "port": port}
        with contextlib.suppress(OSError):
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.close()
            return True
        return False


@contextlib.contextmanager
def warmed(settings: Settings) -> Iterator[WarmServer | None]:
    """While the block runs, a scoring server importing what it needs in a process of its own
    (on another core, beside the job's work), for the serve check to hand its model to; None
    when the serve check is off. Ended with the block, used or not."""
    if not settings.serve_check:
        yield None
        return
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            # -P: not its own folder first on sys.path (packaging.py there is not `packaging`)
            processes.ended_with_this_process([sys.executable, "-P", str(_LAUNCHER)]),
            env=server_env(settings),
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # it may run workers: one group to kill
        )
        try:
            yield WarmServer(process, output)
        finally:
            processes.terminate([process.pid], grace=0)
            process.wait()


@contextlib.contextmanager
def scoring_server(
    settings: Settings, model_uri: str, seconds: float, warm: WarmServer | None = None
) -> Iterator[str]:
    """MLflow's scoring server for ``model_uri`` on a free loopback port while the block runs,
    its URL once /ping answers; its process group is killed when the block ends, however. The
    ``warm`` one serves it if it still waits; else `mlflow models serve` starts."""
    port = processes.free_port()
    url = f"http://{LOOPBACK}:{port}"
    with contextlib.ExitStack() as scope:
        if warm is not None and warm.serve(model_uri, port):
            server, output = warm.process, warm.output
        else:
            output = scope.enter_context(tempfile.TemporaryFile("w+"))
            server = subprocess.Popen(
                processes.ended_with_this_process(serve_command(model_uri, LOOPBACK, port)),
                env=server_env(settings),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # it runs uvicorn as a child: one group to kill
            )
        try:
            ready = processes.wait_until_ready(
                lambda: processes.answers(f"{url}/ping"), server, seconds, POLL_SECONDS
            )
            if not ready:
                raise ServingError(settings.redact(_not_served(model_uri, server, output, seconds)))
            yield url
        finally:
            processes.terminate([server.pid], grace=0)
            server.wait()


def _not_served(model_uri: str, server: subprocess.Popen, output, seconds: float) -> str:
    if server.poll() is None:
        return (
            f"MLflow's scoring server did not answer for {model_uri} within {seconds:.0f} s "
            "(MLOPS_SERVE_CHECK_TIMEOUT); nothing registered"
        )
    output.seek(0)
    text = output.read()
    logger.debug("MLflow's scoring server's output:\n%s", text[-5000:])
    return (
        f"MLflow's scoring server could not serve {model_uri} (exit status {server.returncode}): "
        f"{server_error(text)}; nothing registered"
    )


def server_error(output: str) -> str:
    """The line of a failed server's output that says why: the scoring server's last
    exception line (not the wrapper's that says it exited), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    raised = [line for line in lines if _RAISED.match(line) and _WRAPPER not in line]
    return (raised or lines or ["no output"])[-1][:500]


def canary(url: str, example: pd.DataFrame, seconds: float) -> tuple[pd.DataFrame, float]:
    """POST the rows to the server's /invocations; its predictions and the milliseconds."""
    request = urllib.request.Request(
        f"{url}/invocations",
        data=request_body(example).encode(),
        headers={"Content-Type": "application/json"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=seconds) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise ServingError(
            f"MLflow's scoring server refused the canary request (HTTP {exc.code}): "
            f"{refusal(exc.read())}; nothing registered"
        ) from exc
    except OSError as exc:
        raise ServingError(
            f"MLflow's scoring server did not answer the canary request: {exc}; nothing registered"
        ) from exc
    latency_ms = (time.perf_counter() - started) * 1000
    return pd.DataFrame.from_records(answer["predictions"]), latency_ms


def refusal(body: bytes) -> str:
    """What a scoring server's error response says: the innermost ``Error:`` of its message
    (MLflow prefixes each with the rows and the schema it failed on), else its first line."""
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(ValueError, TypeError, KeyError):
        text = json.loads(text)["message"]
    lines = text.rsplit("Error: ", 1)[-1].strip().splitlines()
    return (lines[0] if lines else "no message")[:500]
