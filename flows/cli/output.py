"""What every command shares: its settings and logging, one clear line for a failure
(exit status 1, or 130 for Ctrl-C), the JSON line of `--json`, and the options several take."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

DataOption = Annotated[
    str,
    typer.Option(
        "--data", help="Data URI: builtin:digits, builtin:breast_cancer, or a .csv/.parquet path."
    ),
]


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
]


state: dict[str, Any] = {"debug": False, "settings": None}


def metrics_line(metrics: dict[str, float]) -> str:
    """The headline test metrics, of a classifier or a regressor."""
    if "test_rmse" in metrics:
        return (
            f"RMSE {metrics['test_rmse']:.4g}, MAE {metrics['test_mae']:.4g}, "
            f"R2 {metrics['test_r2']:.4f}"
        )
    return (
        f"accuracy {metrics['test_accuracy']:.4f}, F1 {metrics['test_f1_macro']:.4f}, "
        f"ROC AUC {metrics['test_roc_auc_ovr']:.4f}"
    )


ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="Project file declaring the models [default: MLOPS_PROJECT, else ./mlops.yaml].",
    ),
]


def prepare(project: Path | None = None):
    """The command's settings, read once; its log lines on stderr, secrets masked. A
    ``project`` file given is the settings' (and its child processes')."""
    from tasks.platform.settings import load_settings

    if project is not None:
        os.environ["MLOPS_PROJECT"] = str(project.expanduser().resolve())
    settings = state["settings"] = load_settings()
    _configure_logging(state["debug"])
    settings.install_redaction()  # again: the handlers configured since mask them too
    return settings


def use_prefect_api(settings) -> None:
    """Flow runs report to a Prefect API: the configured one, else a server of this command's
    own (see `flows.local.command_prefect_api`). Called before Prefect is imported, which
    reads PREFECT_API_URL then; the server stops at exit, after the exit hooks Prefect
    registers on import have sent its last logs and events."""
    import atexit

    from flows import local

    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    run_command(stack.enter_context, local.command_prefect_api(settings))


def _configure_logging(debug: bool) -> None:
    """Our progress lines on stderr; tracebacks only with --debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    for name in ("tasks", "flows"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


def run_command(function, *args, **kwargs):
    """Call a command's work; a failure becomes one clear line on stderr and exit status 1."""
    if not state["debug"]:
        _quiet_third_party()
    try:
        return function(*args, **kwargs)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (flows.signals raises it for both)
        if state["debug"]:
            raise
        stopped_by_signal(interrupted=True)
    except Exception as exc:
        if state["debug"]:
            raise
        typer.echo(f"error: {state['settings'].redact(_describe(exc))}", err=True)
        raise typer.Exit(1) from None


def stopped_by_signal(interrupted: bool = False) -> None:
    """Exit 130 (SIGINT) or 143 (SIGTERM) with one line, if a signal stopped the work."""
    from flows import signals

    if interrupted or signals.received():
        signals.say()
        raise typer.Exit(signals.exit_status())


def _quiet_third_party() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from tasks.platform.redaction import log_handlers

    for handler in log_handlers():
        if type(handler).__name__ == "PrefectConsoleHandler":
            handler.addFilter(_drop_errors)


def _drop_errors(record: logging.LogRecord) -> bool:
    """Prefect logs a failure, traceback and all; without --debug we print one message instead."""
    return record.levelno < logging.ERROR and "in state Failed" not in record.getMessage()


def _describe(exc: Exception) -> str:
    from flows.runs import refused_by_prefect
    from tasks.core.errors import PlatformError
    from tasks.registry.store import refused, unreachable

    if isinstance(exc, PlatformError):
        return str(exc)
    settings = state["settings"]
    if (
        plain := unreachable(settings, exc)
        or refused(settings, exc)
        or refused_by_prefect(settings, exc)
    ):
        return plain
    return f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()
