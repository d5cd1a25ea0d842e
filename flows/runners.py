"""Where fan-out tasks run: the Dask cluster at MLOPS_DASK_ADDRESS, or threads on this machine."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.errors import PlatformError
from tasks.settings import Settings


class DaskUnreachableError(PlatformError):
    """The Dask scheduler named by MLOPS_DASK_ADDRESS does not answer."""


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, in one line, when nothing listens at the scheduler's address
    (distributed itself waits out its own connect timeout and then raises a bare OSError)."""
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
        check_scheduler(settings.dask_address)
        return _dask_task_runner(settings.dask_address)
    return ThreadPoolTaskRunner(max_workers=local_workers)


def _dask_task_runner(address: str) -> TaskRunner:
    """prefect-dask's task runner, submitting a task for a fraction of its cost.

    For every task it submits, prefect-dask serializes all of Prefect's settings (the same
    value each time) and names the Dask task by pickling and hashing its function and
    arguments (PrefectHQ/prefect#18191), which takes the flow process's CPU from the cores the
    folds need (see docs/decisions.md). This one serializes the settings once per
    `map` and gives each task a random key (its Prefect task run id is unique anyway).
    """
    from prefect_dask import DaskTaskRunner
    from prefect_dask.task_runners import PrefectDaskFuture

    class QuickSubmitDaskTaskRunner(DaskTaskRunner):
        def map(self, task, parameters, wait_for=None):
            with _settings_serialized_once():
                return super().map(task, parameters, wait_for)

        def submit(self, task, parameters, wait_for=None, dependencies=None):
            future = self.client.submit(
                task,
                parameters=self._optimize_futures(parameters),
                wait_for=self._optimize_futures(wait_for) if wait_for else None,
                dependencies=dependencies,
                return_type="state",
                pure=False,  # a random Dask key instead of a hash of the pickled task
            )
            return PrefectDaskFuture(wrapped_future=future, task_run_id=future.task_run_id)

    return QuickSubmitDaskTaskRunner(address=address)


@contextlib.contextmanager
def _settings_serialized_once() -> Iterator[None]:
    """Within: each Prefect settings context is serialized for remote tasks once, not once per
    task (prefect.context.serialize_context asks it for every task it ships)."""
    from prefect.context import SettingsContext

    serialize = SettingsContext.serialize
    done: dict[tuple[int, bool], tuple[SettingsContext, dict[str, Any]]] = {}

    def serialized_once(self: SettingsContext, include_secrets: bool = True) -> dict[str, Any]:
        key = (id(self), include_secrets)
        if key not in done:  # the context is kept in the entry: its id is not reused meanwhile
            done[key] = (self, serialize(self, include_secrets=include_secrets))
        return done[key][1]

    SettingsContext.serialize = serialized_once
    try:
        yield
    finally:
        SettingsContext.serialize = serialize
