"""Training and data quality: `mlops train`, `mlops validate`, `mlops suite suggest`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.output import (
    DataOption,
    JsonOption,
    ProjectOption,
    metrics_line,
    prepare,
    print_json,
    run_command,
    use_prefect_api,
)
from tasks.core.parameters import EPOCHS_MAX, EPOCHS_MIN, DriftChoice, TaskOption

# What `mlops train` runs with where neither its options nor the project file say.
TRAINING_DEFAULTS = {
    "data_uri": "builtin:digits",
    "target": "target",
    "task": "auto",
    "exclude": [],
    "suite": None,
    "epochs": 60,
    "drift_mode": "warn",
    "candidates": None,
    "sweep": "none",
    "cv": False,
}


class SearchKind(StrEnum):
    grid = "grid"
    random = "random"


def train(
    data: Annotated[
        str | None,
        typer.Option(
            help="Data URI: builtin:digits, builtin:breast_cancer, a .csv/.parquet path or "
            "s3://bucket/key [default: the model's declared data, else builtin:digits]."
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Label column [default: declared, else target].")
    ] = None,
    task: Annotated[
        TaskOption | None,
        typer.Option(
            help="What to learn; auto: the suite's task, else inferred from the label (text, "
            "booleans, few distinct whole numbers: classification; other numbers: regression) "
            "[default: declared, else auto]."
        ),
    ] = None,
    exclude: Annotated[
        str | None,
        typer.Option(
            metavar="COL[,COL]",
            help="Columns not to learn from, beyond those the suite's feature types exclude.",
        ),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            help="Suite name in expectations/ or a path to a suite JSON [default: declared, "
            "else the model name]."
        ),
    ] = None,
    model_name: Annotated[
        str,
        typer.Option(
            "--model-name",
            help="Registered model name; a model declared in the project file takes its "
            "declared fields, and the options given here win.",
        ),
    ] = "digits",
    epochs: Annotated[
        int | None,
        typer.Option(
            min=EPOCHS_MIN,
            max=EPOCHS_MAX,
            help="Most epochs of a Keras candidate (early stopping may end sooner) "
            "[default: declared, else 60].",
        ),
    ] = None,
    drift: Annotated[
        DriftChoice | None,
        typer.Option(
            help="On drift from the champion's training data: warn, or fail first "
            "[default: declared, else warn]."
        ),
    ] = None,
    candidates: Annotated[
        str | None,
        typer.Option(
            metavar="NAME[,NAME]",
            help="Candidates to fit: built-in families (keras_mlp, logistic_regression, svm, "
            "gradient_boosting, ridge) or your own module:function / file.py:function "
            "[default: declared, else the network and the baselines].",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Retrain even if an identical job (same data sha256, parameters and code) "
            "already registered a version; an identical job is otherwise skipped."
        ),
    ] = False,
    sweep: Annotated[
        bool | None,
        typer.Option(
            "--sweep/--no-sweep",
            help="Search hyper-parameters of every family (candidates x folds as parallel "
            "tasks; on the Dask cluster at MLOPS_DASK_ADDRESS when set) [default: declared, "
            "else no].",
        ),
    ] = None,
    search: Annotated[
        SearchKind, typer.Option(help="With --sweep: the whole grid, or random draws from it.")
    ] = SearchKind.grid,
    cv: Annotated[
        bool | None,
        typer.Option(
            "--cv/--no-cv",
            help="Also cross-validate the chosen candidate (MLOPS_CV_FOLDS more fits, "
            "default 5); a sweep always does [default: declared, else no].",
        ),
    ] = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the training flow once, now: validate, train, evaluate, register, promote."""
    settings = prepare(project)
    from tasks.models.custom import checked_entries
    from tasks.platform.project import load_project
    from tasks.registry.jobs import check_inputs

    declared = run_command(load_project, settings)
    given = {
        "data_uri": data,
        "target": target,
        "task": task and task.value,
        "exclude": exclude and [c.strip() for c in exclude.split(",") if c.strip()],
        "suite": suite,
        "epochs": epochs,
        "drift_mode": drift and drift.value,
        "candidates": candidates and [{"entry": c.strip()} for c in candidates.split(",")],
    }
    job = {
        **TRAINING_DEFAULTS,
        **(declared.parameters(model_name) if declared else {}),
        **{name: value for name, value in given.items() if value is not None},
        "model_name": model_name,
        "force": force,
    }
    if sweep is not None:
        job["sweep"] = search.value if sweep else "none"
    if cv is not None:
        job["cv"] = cv
    job["candidates"] = run_command(checked_entries, job["candidates"], job["task"], Path.cwd())
    run_command(
        check_inputs, settings, job["data_uri"], model_name, job["suite"], job["candidates"],
        job["sweep"],
    )  # fmt: skip
    use_prefect_api(settings)
    from flows.training import training_flow

    result = run_command(training_flow, **job)
    if as_json:
        print_json(result)
        return
    if result["skipped"]:
        typer.echo(f"\n{result['model']} v{result['version']}: {result['decision']}")
        return
    lines = [
        f"\n{result['model']} v{result['version']} ({result['family']}, {result['task']}): "
        f"{metrics_line(result['metrics'])} on the test set",
        f"Decision: {result['alias']}: {result['decision']}",
        f"Drift: {_drift_line(result['drift'])}",
        *(_leak_line(leak) for leak in result["suspected_leaks"]),
        f"Champion: v{result['champion_version']}    data sha256: {result['data_sha256'][:16]}...",
        "Look at it: `mlops up` (Prefect and MLflow UIs for this home), or "
        f"`mlflow ui --backend-store-uri {settings.resolved_tracking_uri}`",
    ]
    typer.echo("\n".join(lines))


def _leak_line(leak: dict[str, Any]) -> str:
    return (
        f"Suspected leak: {leak['feature']} alone predicts the label ({leak['score']:.3f} on "
        f"held-out rows); check it, or leave it out with --exclude {leak['feature']}"
    )


def _drift_line(report: dict[str, Any]) -> str:
    if not report["checked"]:
        return f"not checked ({report['reason']})"
    drifted = report["drifted_features"]
    if not drifted:
        return f"none against {report['reference']}"
    return f"{len(drifted)} features against {report['reference']} ({', '.join(drifted[:5])}...)"


def validate(
    data: DataOption = "builtin:digits",
    suite: Annotated[
        str, typer.Option(help="Suite name in expectations/ or a path to a suite JSON.")
    ] = "digits",
    as_json: JsonOption = False,
) -> None:
    """Check data against a Great Expectations suite, without training."""
    settings = prepare()
    from tasks.data import sources
    from tasks.quality import validation

    def check() -> validation.ValidationReport:
        suite_path = validation.resolve_suite(suite, settings.suites_dir)
        return validation.validate_frame(sources.load_frame(data), suite_path)

    report = run_command(check)
    if as_json:  # the whole report, rejected or not: every failure with its counts
        print_json(report.to_dict())
    if not report.success:
        typer.echo(f"error: {settings.redact(report.summary())}", err=True)
        raise typer.Exit(1)
    if not as_json:
        typer.echo(report.summary())


def suite_suggest(
    data: DataOption,
    name: Annotated[str, typer.Option(help="Suite name (and model name it will serve).")],
    target: Annotated[
        str | None, typer.Option(help="Label column: its value set, every label required.")
    ] = "target",
    task: Annotated[
        TaskOption,
        typer.Option(help="The label's task, written into the suite; auto: inferred from it."),
    ] = TaskOption.auto,
    out: Annotated[
        Path | None, typer.Option(help="Where to write [default: expectations/NAME.json].")
    ] = None,
) -> None:
    """Infer a suite from good reference data: columns, feature types (numeric, categorical,
    and the columns left out with why: identifiers, free text, dates, constants), the task,
    ranges, null rates, value sets. Review it (and its meta.features) before committing."""
    settings = prepare()
    from tasks.data import sources
    from tasks.quality.suggest import write_suite

    def suggest() -> Path:
        chosen = None if task == TaskOption.auto else task.value
        path = out or settings.suites_dir / f"{name}.json"
        return write_suite(sources.load_frame(data), name, target, chosen, path)

    path = run_command(suggest)
    typer.echo(f"Wrote {path}: review it, then commit it beside the code.")
