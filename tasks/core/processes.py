"""Server processes on this machine: a free loopback port, waiting until a started server
answers, and stopping a server with the workers of its process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

# Run in the child before the server: SIGTERM for it when the process that started it dies
# (Linux's parent-death signal; a pre-exec hook is unsafe in a process that runs threads).
_LAUNCHER = """import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def ended_with_this_process(command: list[str]) -> list[str]:
    """``command`` run so that it ends when this process dies, even by SIGKILL (on Linux)."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *command]


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str, timeout: float = 1) -> bool:
    """Whether a GET of ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until_ready(
    ready: Callable[[], bool], process: subprocess.Popen, seconds: float, interval: float = 0.5
) -> bool:
    """Poll ``ready`` until it holds (True), or until the process exits or ``seconds`` pass
    (False: ``process.returncode`` tells which)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return True
        if process.poll() is not None:
            return False
        time.sleep(interval)
    return False


def terminate(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM to the process group each of ``pids`` leads, SIGKILL to those left after
    ``grace`` seconds."""
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
