"""Ctrl-C and SIGTERM for the `mlops` commands: each stops within seconds, with exit status
130 (SIGINT) or 143 (SIGTERM) and one line on stderr saying so.

The first signal raises KeyboardInterrupt in the main thread, whichever of the two it was, so
one path cleans up after both; it also arms a deadline. A second signal, or the deadline,
ends the command at once: its child processes (and their groups) are killed first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable

GRACE_SECONDS = 8.0  # from the first signal to the forced end: under the 10 s promised
HANDLED = (signal.SIGINT, signal.SIGTERM)

_state: dict = {"signum": None, "said": False, "on_signal": None}
_lock = threading.RLock()  # a second signal's handler may re-enter say()


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (from the main thread, before any work)."""
    for signum in HANDLED:
        signal.signal(signum, handle)


def received() -> int | None:
    """The first signal this command received, if any."""
    return _state["signum"]


def exit_status() -> int:
    """The shell's status for the signal received: 128 + its number."""
    return 128 + (_state["signum"] or signal.SIGINT)


def say() -> None:
    """The one line on stderr that says the command was stopped (printed once)."""
    with _lock:
        if _state["said"]:
            return
        _state["said"] = True
    if (_state["signum"] or signal.SIGINT) == signal.SIGINT:
        line = "error: aborted by an interrupt signal (Ctrl-C)"
    else:
        line = "error: stopped by a termination signal (SIGTERM)"
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


@contextlib.contextmanager
def on_signal(callback: Callable[[int], None]):
    """Within: the first signal calls ``callback(signum)`` instead of raising
    KeyboardInterrupt (for work that stops itself, such as a Prefect runner)."""
    _state["on_signal"] = callback
    try:
        yield
    finally:
        _state["on_signal"] = None


def handle(signum: int, frame=None) -> None:
    """The signal handler (also what Prefect's runner calls for SIGTERM while it serves)."""
    if _state["signum"] is not None:  # a second signal: no more waiting
        end_now()
    _state["signum"] = signum
    timer = threading.Timer(GRACE_SECONDS, end_now)
    timer.daemon = True
    timer.start()
    if callback := _state["on_signal"]:
        callback(signum)
        return
    raise KeyboardInterrupt


def end_now() -> None:
    """Kill this command's child processes with their groups, say why, and exit."""
    kill_children()
    say()
    os._exit(exit_status())


def kill_children() -> None:
    """SIGKILL to every descendant of this process, and to each group one of them leads."""
    import psutil

    children = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(OSError):
            if os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            child.kill()
