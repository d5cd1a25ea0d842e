"""flows.signals in a real process: one path for SIGINT and SIGTERM, a second signal or the
deadline ends a command whose cleanup hangs, its child processes with it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

# Work that stops on KeyboardInterrupt, then hangs in its cleanup (as a thread join can);
# a child process in a session of its own, as a server would be.
HANGING = """
import subprocess, sys, time
from flows import signals
signals.GRACE_SECONDS = float(sys.argv[1])
signals.install()
child = subprocess.Popen(["sleep", "300"], start_new_session=True)
try:
    print(child.pid, flush=True)  # the test signals once it has read this line
    time.sleep(300)
except KeyboardInterrupt:
    print("cleaning up", flush=True)
    time.sleep(300)
"""


def start(grace: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING, str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, int(process.stdout.readline())


def stopped(process: subprocess.Popen, child: int, seconds: float) -> tuple[int, str, float]:
    started = time.monotonic()
    status = process.wait(timeout=seconds)
    elapsed = time.monotonic() - started
    try:  # SIGKILLed with its group as the command left: gone within moments
        _, alive = psutil.wait_procs([psutil.Process(child)], timeout=5)
        assert all(p.status() == psutil.STATUS_ZOMBIE for p in alive)
    except psutil.NoSuchProcess:
        pass
    return status, process.stderr.read(), elapsed


@pytest.mark.parametrize(
    ("signum", "status", "words"),
    [(signal.SIGINT, 130, "interrupt signal (Ctrl-C)"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_a_second_signal_ends_at_once_with_the_children(signum, status, words):
    process, child = start(grace=60)
    process.send_signal(signum)
    assert process.stdout.readline().strip() == "cleaning up"  # the first one: an interrupt
    process.send_signal(signum)
    done, stderr, elapsed = stopped(process, child, 10)
    assert done == status and elapsed < 2
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")
    assert words in stderr


def test_a_hung_cleanup_ends_at_the_deadline():
    process, child = start(grace=1)
    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline().strip() == "cleaning up"
    done, stderr, elapsed = stopped(process, child, 10)
    assert done == 143 and elapsed < 5
    assert stderr.strip() == "error: stopped by a termination signal (SIGTERM)"
