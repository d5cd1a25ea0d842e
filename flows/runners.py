"""Where fan-out tasks run: the Dask cluster at MLOPS_DASK_ADDRESS, or threads on this machine."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.core.errors import PlatformError, first_line
from tasks.platform.settings import Settings

# A scheduler that accepts the connection answers Dask's handshake at once, or never.
_HANDSHAKE_SECONDS = 10


class DaskUnreachableError(PlatformError):
    """The Dask scheduler named by MLOPS_DASK_ADDRESS does not answer."""


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, in one line, when nothing listens at the scheduler's address
    (distributed itself waits out its own connect timeout and then raises a bare OSError)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
        raise DaskUnreachableError(
            f"MLOPS_DASK_ADDRESS={address!r} is not a scheduler address: use tcp://host:port "
            "(tls://host:port for a cluster with TLS)"
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
        return _dask_task_runner(settings.dask_address, dask_security(settings))
    return ThreadPoolTaskRunner(max_workers=local_workers)


def dask_security(settings: Settings):
    """distributed's `Security` for a tls:// scheduler (mutual TLS: the cluster's CA, and this
    client's certificate and key); None for a tcp:// one."""
    files = {
        "MLOPS_DASK_TLS_CA_FILE": settings.dask_tls_ca_file,
        "MLOPS_DASK_TLS_CERT": settings.dask_tls_cert,
        "MLOPS_DASK_TLS_KEY": settings.dask_tls_key,
    }
    if not str(settings.dask_address).startswith("tls://"):
        return None
    if missing := [name for name, path in files.items() if path is None]:
        raise DaskUnreachableError(
            f"MLOPS_DASK_ADDRESS={settings.dask_address} is a TLS scheduler: set "
            f"{', '.join(missing)} (see docs/security.md)"
        )
    if unreadable := [f"{name}={path}" for name, path in files.items() if not path.is_file()]:
        raise DaskUnreachableError(f"cannot read {', '.join(unreadable)}")
    from distributed import Security

    return Security(
        tls_ca_file=str(settings.dask_tls_ca_file),
        tls_client_cert=str(settings.dask_tls_cert),
        tls_client_key=str(settings.dask_tls_key),
        require_encryption=True,
    )


def _dask_task_runner(address: str, security) -> TaskRunner:
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
        @property
        def client(self):
            try:
                return super().client
            except (OSError, TimeoutError) as exc:  # the handshake failed, or timed out
                raise DaskUnreachableError(_refusal(address, security, exc)) from None

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

    client_kwargs = {"timeout": _HANDSHAKE_SECONDS}
    if security is not None:
        client_kwargs["security"] = security
    return QuickSubmitDaskTaskRunner(address=address, client_kwargs=client_kwargs)


def _refusal(address: str, security, exc: BaseException) -> str:
    """Why a scheduler that accepts connections would not talk to this client, in one line."""
    hint = (
        "does the cluster's CA sign MLOPS_DASK_TLS_CERT?"
        if security is not None
        else "if the cluster uses TLS, use tls://HOST:PORT with MLOPS_DASK_TLS_CA_FILE, "
        "MLOPS_DASK_TLS_CERT and MLOPS_DASK_TLS_KEY"
    )
    return f"the Dask scheduler at {address} refused this client ({first_line(exc)}): {hint}"


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
