"""The ``mlops`` command. Heavy libraries are imported inside the commands, so --help is instant."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from flows.cli import inference, project, registry, servers, training
from flows.cli.output import state

app = typer.Typer(
    name="mlops",
    help=(
        "Scheduled, trustworthy retraining: Great Expectations validation, Keras and "
        "scikit-learn candidates, MLflow tracking and registry, Prefect orchestration.\n\n"
        "State lives under MLOPS_HOME (default ~/.mlops): an MLflow SQLite store, artifacts and "
        "Prefect's database. MLFLOW_TRACKING_URI, MLOPS_ARTIFACT_URI and PREFECT_API_URL point "
        "it at shared servers instead."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

suite_app = typer.Typer(help="Great Expectations suites: the data contracts in expectations/.")
app.add_typer(suite_app, name="suite")


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and Prefect's full logs.")
    ] = False,
) -> None:
    state["debug"] = debug


for command in (project.init, training.train, training.validate):
    app.command()(command)
suite_app.command("suggest")(training.suite_suggest)
for command in (registry.models, registry.promote, registry.rollback, inference.predict):
    app.command()(command)
app.command()(inference.feedback)
app.command()(inference.export)
for command in (servers.serve, project.deploy, servers.up, servers.down):
    app.command()(command)
app.command("serve-model")(inference.serve_model)


def main() -> None:
    """The `mlops` command, leaving without unloading the libraries it imported.

    Python's exit joins threads, runs the exit hooks (Prefect sends its last logs and events
    there), flushes the streams, and then tears every module down: with TensorFlow, MLflow,
    Prefect and Great Expectations loaded, a noticeable wait after everything was stored and
    printed (see docs/decisions.md). A hook registered here, before any library registers
    its own, runs after all of theirs and ends the process there.
    """
    import atexit

    from flows import signals

    signals.install()  # Ctrl-C and SIGTERM take one path: cleanup, then 130 or 143
    status: list[int] = [1]  # an uncaught exception leaves it at 1, as Python's exit would
    atexit.register(_leave, status)
    try:
        app()
    except SystemExit as done:
        status[0] = done.code if isinstance(done.code, int) else int(done.code is not None)
        raise


def _leave(status: list[int]) -> None:
    import os

    from flows import signals

    if signals.received():  # stopped outside a command's work, or its cleanup: still 130/143
        signals.say()
        status[0] = signals.exit_status()
    logging.shutdown()  # its exit hook was registered before ours, so it would run after
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status[0])
