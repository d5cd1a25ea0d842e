"""The project file's commands: `mlops init` (declare a model) and `mlops deploy` (its
deployments on a work pool)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.output import DataOption, ProjectOption, prepare, run_command, use_prefect_api
from tasks.core.parameters import TaskOption


def init(
    data: DataOption,
    target: Annotated[str, typer.Option(help="Label column.")],
    name: Annotated[str, typer.Option(help="Model name (and its suite's).")],
    schedule: Annotated[
        str | None,
        typer.Option(metavar="CRON", help="When to retrain [default: MLOPS_RETRAIN_CRON]."),
    ] = None,
    task: Annotated[
        TaskOption, typer.Option(help="The label's task; auto: inferred from it.")
    ] = TaskOption.auto,
    project: ProjectOption = None,
) -> None:
    """Declare a model in the project file, with a suite suggested from its data.

    The suite goes to expectations/NAME.json beside the project file (an existing one is
    kept); the file is created if missing, and what it holds, comments included, is kept."""
    settings = prepare(project)
    from tasks.platform import declare

    path = project or Path.cwd() / "mlops.yaml"
    chosen = None if task == TaskOption.auto else task.value
    suite = run_command(declare.declare_model, settings, path, name, data, target, chosen, schedule)
    typer.echo(
        f"Wrote {suite} (review it) and declared {name} in {path}.\n"
        f"Next: `mlops train --model-name {name}` trains it now; `mlops serve` retrains it on "
        "its schedule."
    )


def deploy(
    pool: Annotated[str, typer.Option(help="Work pool whose workers run the flows.")],
    automations: Annotated[
        bool,
        typer.Option(help="Also create (or update) the automations, as `mlops serve` does."),
    ] = True,
    project: ProjectOption = None,
) -> None:
    """Register the deployments `mlops serve` publishes on a work pool, for its workers.

    A `retrain-NAME` per declared model, promote, rollback, predict and feedback, on the
    Prefect server at PREFECT_API_URL (or of `mlops up`); `prefect worker start --pool POOL`
    runs them (workers need the project installed)."""
    settings = prepare(project)
    if settings.resolved_prefect_api_url is None:
        typer.echo(
            "error: mlops deploy needs a Prefect server: set PREFECT_API_URL, or start `mlops up`",
            err=True,
        )
        raise typer.Exit(1)
    use_prefect_api(settings)
    from flows.deployments import deploy_to_pool

    names = run_command(deploy_to_pool, settings, pool, automations)
    typer.echo("\n".join(f"Deployed {name} on work pool {pool}" for name in names))
    typer.echo(f"Run them: prefect worker start --pool {pool}")
