"""The registry: `mlops models`, `mlops promote`, `mlops rollback`."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.output import (
    JsonOption,
    ProjectOption,
    metrics_line,
    prepare,
    print_json,
    run_command,
)


def models(
    name: Annotated[str | None, typer.Argument(help="Registered model [default: all].")] = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """List registered versions with their aliases and key metrics.

    Models the project file declares that have no version yet are listed too, with their
    schedules."""
    settings = prepare(project)
    from tasks.platform.project import load_project
    from tasks.registry import versions

    rows = run_command(versions.describe_versions, settings, name)
    declared = run_command(load_project, settings)
    if declared is not None:
        rows += [
            {"model": model, "version": None, "aliases": [], "family": None, "metrics": {},
             "declared": True, "schedule": [s.cron for s in spec.schedules(settings.retrain_cron)]}
            for model, spec in declared.models.items()
            if name in (None, model) and not any(row["model"] == model for row in rows)
        ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No registered models yet: run `mlops train`.")
        return
    typer.echo(f"{'model':<16}{'version':>8}  {'aliases':<22}{'family':<22}test metrics")
    for row in rows:
        if row["version"] is None:
            when = ", ".join(row["schedule"]) or "no schedule"
            typer.echo(f"{row['model']:<16}{'-':>8}  declared, not trained yet (retrains {when})")
            continue
        metrics = row["metrics"]
        shown = (
            metrics_line(metrics) if "test_accuracy" in metrics or "test_rmse" in metrics else "-"
        )
        typer.echo(
            f"{row['model']:<16}{row['version']:>8}  {','.join(row['aliases']) or '-':<22}"
            f"{row['family'] or '-':<22}{shown}"
        )


def _actor() -> str:
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


def _print_move(record: dict[str, str], as_json: bool) -> None:
    if as_json:
        print_json(record)
        return
    typer.echo(
        f"{record['model']}@{record['alias']} -> v{record['version']} "
        f"(was {record['previous_version']}), by {record['by']} at {record['at']}: "
        f"{record['reason']}"
    )


def promote(
    name: Annotated[str, typer.Argument(help="Registered model.")],
    version: Annotated[str, typer.Option("--version", "-v", help="Version to promote.")],
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "promoted by hand",
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a READY version; the version records who, when, why and the previous."""
    settings = prepare()
    from tasks.registry import versions

    record = run_command(versions.assign_alias, settings, name, version, alias, _actor(), reason)
    _print_move(record, as_json)


def rollback(
    name: Annotated[str, typer.Argument(help="Registered model.")],
    alias: Annotated[str, typer.Option(help="Alias to roll back.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "rolled back by hand",
    as_json: JsonOption = False,
) -> None:
    """Return an alias (champion by default) to the version that held it before."""
    settings = prepare()
    from tasks.registry import versions

    record = run_command(versions.rollback_alias, settings, name, alias, _actor(), reason)
    _print_move(record, as_json)
