"""Where fan-out tasks run: the Dask cluster at MLOPS_DASK_ADDRESS, or threads on this machine."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.settings import Settings


class DaskUnreachableError(Exception):
    """The Dask scheduler named by MLOPS_DASK_ADDRESS does not answer."""


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, in one line, when nothing listens at the scheduler's address
    (distributed itself waits 30 s and then raises a bare OSError)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname or not parsed.port:
        raise DaskUnreachableError(
            f"MLOPS_DASK_ADDRESS={address!r} is not a scheduler address: use tcp://host:port"
        )
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=timeout).close()
    except OSError as exc:
        raise DaskUnreachableError(
            f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc}): start it, "
            "or unset MLOPS_DASK_ADDRESS to run on this machine"
        ) from None


def task_runner(settings: Settings, local_workers: int) -> TaskRunner:
    """The Dask cluster at MLOPS_DASK_ADDRESS (whose workers need the platform installed),
    or `local_workers` threads here."""
    if settings.dask_address:
        from prefect_dask import DaskTaskRunner

        check_scheduler(settings.dask_address)
        return DaskTaskRunner(address=settings.dask_address)
    return ThreadPoolTaskRunner(max_workers=local_workers)
