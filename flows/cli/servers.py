"""The servers: `mlops serve` (the deployments), `mlops up` / `mlops down` (local UIs)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.output import (
    ProjectOption,
    prepare,
    run_command,
    stopped_by_signal,
    use_prefect_api,
)


def serve(
    automations: Annotated[
        bool,
        typer.Option(
            help="Also create (or update) the automations: retrain on drift "
            "(MLOPS_RETRAIN_COOLDOWN), notify MLOPS_NOTIFY_URL of failed runs."
        ),
    ] = True,
    project: ProjectOption = None,
) -> None:
    """Publish the deployments to the Prefect API and run their flow runs here until Ctrl-C.

    A `retrain-NAME` per model the project file declares (its fields, its schedules), or
    without one `retrain` (on MLOPS_RETRAIN_CRON); promote, rollback, predict and feedback."""
    settings = prepare(project)
    use_prefect_api(settings)
    from flows.deployments import serve_deployments

    api = settings.resolved_prefect_api_url
    typer.echo(f"Serving to the Prefect API at {api}; Ctrl-C stops.", err=True)
    run_command(serve_deployments, settings, automations)  # a signal cancels the runs in flight
    stopped_by_signal()
    typer.echo("Stopped serving.", err=True)


def up(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Prefect server and UI port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
) -> None:
    """Start a Prefect server (UI) and an MLflow UI for this home; later commands use them
    (and skip starting a Prefect API server of their own)."""
    settings = prepare()
    from flows import local

    servers = run_command(local.start, settings, host, prefect_port, mlflow_port)
    typer.echo(
        f"Prefect UI   {servers.prefect_ui_url}\n"
        f"MLflow UI    {servers.mlflow_url}\n"
        f"mlops commands in this home now use the Prefect API at {servers.prefect_api_url}.\n"
        "Ctrl-C or `mlops down` stops both."
    )
    run_command(local.wait_until_down, settings)  # Ctrl-C or SIGTERM: both stopped first
    typer.echo("Stopped.")


def down() -> None:
    """Stop the servers `mlops up` started for this home."""
    settings = prepare()
    from flows import local

    servers = local.stop(settings)
    typer.echo("Stopped." if servers else "Nothing was up for this home.")
