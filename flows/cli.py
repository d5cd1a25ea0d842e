"""The ``mlops`` command. Heavy libraries are imported inside the commands, so --help is instant."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tasks.core.parameters import EPOCHS_MAX, EPOCHS_MIN, DriftChoice, TaskOption

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

_state: dict[str, Any] = {"debug": False, "settings": None}


class SearchKind(StrEnum):
    grid = "grid"
    random = "random"


class ExportFormat(StrEnum):
    tflite = "tflite"
    onnx = "onnx"
    keras = "keras"


DataOption = Annotated[
    str,
    typer.Option(
        "--data", help="Data URI: builtin:digits, builtin:breast_cancer, or a .csv/.parquet path."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
]


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and Prefect's full logs.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def train(
    data: DataOption = "builtin:digits",
    target: Annotated[str, typer.Option(help="Label column.")] = "target",
    task: Annotated[
        TaskOption,
        typer.Option(
            help="What to learn; auto: the suite's task, else inferred from the label (text, "
            "booleans, few distinct whole numbers: classification; other numbers: regression)."
        ),
    ] = TaskOption.auto,
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
            help="Suite name in expectations/ or a path to a suite JSON [default: model name]."
        ),
    ] = None,
    model_name: Annotated[
        str, typer.Option("--model-name", help="Registered model name.")
    ] = "digits",
    epochs: Annotated[
        int,
        typer.Option(
            min=EPOCHS_MIN,
            max=EPOCHS_MAX,
            help="Most epochs of the Keras network (early stopping may end sooner).",
        ),
    ] = 60,
    drift: Annotated[
        DriftChoice,
        typer.Option(help="On drift from the champion's training data: warn, or fail first."),
    ] = DriftChoice.warn,
    force: Annotated[
        bool,
        typer.Option(
            help="Retrain even if an identical job (same data sha256, parameters and code) "
            "already registered a version; an identical job is otherwise skipped."
        ),
    ] = False,
    sweep: Annotated[
        bool,
        typer.Option(
            help="Search hyper-parameters of every family (candidates x folds as parallel "
            "tasks; on the Dask cluster at MLOPS_DASK_ADDRESS when set)."
        ),
    ] = False,
    search: Annotated[
        SearchKind, typer.Option(help="With --sweep: the whole grid, or random draws from it.")
    ] = SearchKind.grid,
    cv: Annotated[
        bool,
        typer.Option(
            "--cv",
            help="Also cross-validate the chosen candidate (MLOPS_CV_FOLDS more fits, "
            "default 5); a sweep always does.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the training flow once, now: validate, train, evaluate, register, promote."""
    settings = _prepare()
    from tasks.registry.jobs import check_inputs

    _run(check_inputs, settings, data, model_name, suite)
    _prefect_api(settings)
    from flows.training import training_flow

    result = _run(
        training_flow,
        data_uri=data,
        target=target,
        task=task.value,
        exclude=[c.strip() for c in (exclude or "").split(",") if c.strip()],
        suite=suite,
        model_name=model_name,
        epochs=epochs,
        drift_mode=drift.value,
        force=force,
        sweep=search.value if sweep else "none",
        cv=cv,
    )
    if as_json:
        _print_json(result)
        return
    if result["skipped"]:
        typer.echo(f"\n{result['model']} v{result['version']}: {result['decision']}")
        return
    typer.echo(
        f"\n{result['model']} v{result['version']} ({result['family']}, {result['task']}): "
        f"{_metrics_line(result['metrics'])} on the test set\n"
        f"Decision: {result['alias']}: {result['decision']}\n"
        f"Drift: {_drift_line(result['drift'])}\n"
        f"Champion: v{result['champion_version']}    data sha256: {result['data_sha256'][:16]}...\n"
        f"Look at it: `mlops up` (Prefect and MLflow UIs for this home), or "
        f"`mlflow ui --backend-store-uri {settings.resolved_tracking_uri}`"
    )


@app.command()
def validate(
    data: DataOption = "builtin:digits",
    suite: Annotated[
        str, typer.Option(help="Suite name in expectations/ or a path to a suite JSON.")
    ] = "digits",
    as_json: JsonOption = False,
) -> None:
    """Check data against a Great Expectations suite, without training."""
    settings = _prepare()
    from tasks.data import sources
    from tasks.quality import validation

    def check() -> validation.ValidationReport:
        suite_path = validation.resolve_suite(suite, settings.suites_dir)
        return validation.validate_frame(sources.load_frame(data), suite_path)

    report = _run(check)
    if as_json:  # the whole report, rejected or not: every failure with its counts
        _print_json(report.to_dict())
    if not report.success:
        typer.echo(f"error: {settings.redact(report.summary())}", err=True)
        raise typer.Exit(1)
    if not as_json:
        typer.echo(report.summary())


def _metrics_line(metrics: dict[str, float]) -> str:
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


def _drift_line(report: dict[str, Any]) -> str:
    if not report["checked"]:
        return f"not checked ({report['reason']})"
    drifted = report["drifted_features"]
    if not drifted:
        return f"none against {report['reference']}"
    return f"{len(drifted)} features against {report['reference']} ({', '.join(drifted[:5])}...)"


@suite_app.command("suggest")
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
    settings = _prepare()
    from tasks.data import sources
    from tasks.quality import validation
    from tasks.quality.suggest import suggest_suite

    def suggest() -> Path:
        frame = sources.load_frame(data)
        label = target if target in frame.columns else None
        chosen = None if task == TaskOption.auto else task.value
        suite = suggest_suite(frame, name, label, chosen)
        path = out or settings.suites_dir / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(suite, indent=2) + "\n")
        report = validation.validate_frame(frame, path)
        if not report.success:  # a suite must accept the data it came from
            path.unlink()
            raise validation.DataValidationError(report)
        return path

    path = _run(suggest)
    typer.echo(f"Wrote {path}: review it, then commit it beside the code.")


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="Registered model [default: all].")] = None,
    as_json: JsonOption = False,
) -> None:
    """List registered versions with their aliases and key metrics."""
    settings = _prepare()
    from tasks.registry import versions

    rows = _run(versions.describe_versions, settings, name)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("No registered models yet: run `mlops train`.")
        return
    typer.echo(f"{'model':<16}{'version':>8}  {'aliases':<22}{'family':<22}test metrics")
    for row in rows:
        metrics = row["metrics"]
        shown = (
            _metrics_line(metrics) if "test_accuracy" in metrics or "test_rmse" in metrics else "-"
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
        _print_json(record)
        return
    typer.echo(
        f"{record['model']}@{record['alias']} -> v{record['version']} "
        f"(was {record['previous_version']}), by {record['by']} at {record['at']}: "
        f"{record['reason']}"
    )


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model.")],
    version: Annotated[str, typer.Option("--version", "-v", help="Version to promote.")],
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "promoted by hand",
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a READY version; the version records who, when, why and the previous."""
    settings = _prepare()
    from tasks.registry import versions

    record = _run(versions.assign_alias, settings, name, version, alias, _actor(), reason)
    _print_move(record, as_json)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model.")],
    alias: Annotated[str, typer.Option(help="Alias to roll back.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "rolled back by hand",
    as_json: JsonOption = False,
) -> None:
    """Return an alias (champion by default) to the version that held it before."""
    settings = _prepare()
    from tasks.registry import versions

    record = _run(versions.rollback_alias, settings, name, alias, _actor(), reason)
    _print_move(record, as_json)


@app.command()
def predict(
    model: Annotated[str, typer.Option(help="NAME or NAME@ALIAS.")] = "digits@champion",
    data: DataOption = "builtin:digits",
    output: Annotated[str, typer.Option(help="Where to write predictions: .csv or .parquet.")] = (
        "predictions.csv"
    ),
    as_json: JsonOption = False,
) -> None:
    """Score a batch with a registered model (its suite checks the input first)."""
    _prefect_api(_prepare())
    from flows.inference import predict_flow

    result = _run(predict_flow, data_uri=data, output_uri=output, model=model)
    if as_json:
        _print_json(result)
        return
    typer.echo(
        f"{result['rows']} predictions by {result['model']} v{result['version']} "
        f"in {result['seconds']:.2f} s -> {result['output']}"
    )
    if result["unseen_categories"]:
        shown = ", ".join(f"{k}: {v} rows" for k, v in result["unseen_categories"].items())
        typer.echo(f"Categories never seen in training (unknown bucket): {shown}")
    typer.echo(result["drift_summary"])


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="NAME or NAME@ALIAS (default alias: champion).")],
    out: Annotated[Path, typer.Option(help="File to write.")],
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Version to export, not an alias's.")
    ] = None,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            help="tflite (a network's int8 variant; its default), keras (its float32 network) "
            "or onnx (a scikit-learn family's; its default).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a version as a compact file for efficient inference, with its accuracy, size and
    latency per 1,000 rows as measured on its test rows against the model as trained."""
    name, _, alias = model.partition("@")
    if alias and version:
        raise typer.BadParameter("name a version by NAME@ALIAS or by --version, not both")
    settings = _prepare()
    from tasks.registry import exports

    chosen = fmt.value if fmt else None
    result = _run(exports.export, settings, name, alias or "champion", version, out, chosen)
    if as_json:
        _print_json(result)
        return
    metric, inputs = result["metric"], result["inputs"]
    typer.echo(
        f"Wrote {result['path']}: {result['model']} v{result['version']} as {result['format']}, "
        f"{result['size_bytes']:,} bytes"
    )
    if result[metric] is not None:
        typer.echo(
            f"On its test rows: {metric} {result[metric]:.4f} (as trained "
            f"{result[f'float_{metric}']:.4f}), {result['latency_ms_per_1k']:.3g} ms per 1,000 "
            f"rows (as trained {result['float_latency_ms_per_1k']:.3g}, "
            f"{result['float_size_bytes']:,} bytes)"
        )
    prepared = "its encoder's output (artifacts/encoder.joblib of the registered model) of "
    typer.echo(
        f"It reads float32 rows: {prepared if inputs['encoded'] else ''}"
        f"{len(inputs['columns'])} columns in this order: {', '.join(inputs['columns'])}"
    )


@app.command()
def serve(
    automations: Annotated[
        bool,
        typer.Option(
            help="Also create (or update) the automations: retrain on drift "
            "(MLOPS_RETRAIN_COOLDOWN), notify MLOPS_NOTIFY_URL of failed runs."
        ),
    ] = True,
) -> None:
    """Publish retrain (on MLOPS_RETRAIN_CRON), promote, rollback and predict, and run them."""
    settings = _prepare()
    _prefect_api(settings)
    from flows.deployments import serve_deployments

    api = settings.resolved_prefect_api_url
    typer.echo(f"Serving to the Prefect API at {api}; Ctrl-C stops.", err=True)
    with contextlib.suppress(KeyboardInterrupt):  # Prefect usually handles Ctrl-C itself
        _run(serve_deployments, settings, automations)
    typer.echo("Stopped serving.", err=True)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Prefect server and UI port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
) -> None:
    """Start a Prefect server (UI) and an MLflow UI for this home; later commands use them
    (and skip starting a Prefect API server of their own)."""
    import time

    settings = _prepare()
    from flows import local

    servers = _run(local.start, settings, host, prefect_port, mlflow_port)
    typer.echo(
        f"Prefect UI   {servers.prefect_ui_url}\n"
        f"MLflow UI    {servers.mlflow_url}\n"
        f"mlops commands in this home now use the Prefect API at {servers.prefect_api_url}.\n"
        "Ctrl-C or `mlops down` stops both."
    )
    try:
        while settings.local_servers_file.exists():
            time.sleep(1)
    except KeyboardInterrupt:
        local.stop(settings)
        typer.echo("Stopped.")


@app.command()
def down() -> None:
    """Stop the servers `mlops up` started for this home."""
    settings = _prepare()
    from flows import local

    servers = local.stop(settings)
    typer.echo("Stopped." if servers else "Nothing was up for this home.")


@app.command("serve-model")
def serve_model(
    model: Annotated[str, typer.Argument(help="NAME or NAME@ALIAS (default alias: champion).")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5001,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0: every one, no auth).")
    ] = "127.0.0.1",
) -> None:
    """Serve a registered version over REST with MLflow's own scoring server (`mlflow models
    serve --env-manager local`: this environment's packages, one worker), in the foreground
    until Ctrl-C. POST /invocations takes {"dataframe_split": {"columns": [...], "data":
    [[...]]}} and answers {"predictions": [...]}, a row each; GET /ping answers once the
    model is loaded. The same server checks every version before it takes an alias."""
    name, _, alias = model.partition("@")
    settings = _prepare()
    from tasks.registry import serving, versions

    alias = alias or versions.CHAMPION
    found = _run(versions.aliased_version, settings, name, alias)
    uri = f"models:/{name}/{found.version}"
    body = _run(serving.example_request, settings, uri)
    url = f"http://{host}:{port}"
    typer.echo(
        f"Serving {name} v{found.version} ({alias}) at {url} once it has loaded; Ctrl-C stops.\n"
        f"Try: curl -s {url}/invocations -H 'Content-Type: application/json' -d '{body}'"
    )
    _run(serving.serve, settings, uri, host, port)


def _prepare():
    """The command's settings, read once; its log lines on stderr, secrets masked."""
    from tasks.platform.settings import load_settings

    settings = _state["settings"] = load_settings()
    _configure_logging(_state["debug"])
    settings.install_redaction()  # again: the handlers configured since mask them too
    return settings


def _prefect_api(settings) -> None:
    """Flow runs report to a Prefect API: the configured one, else a server of this command's
    own (see `flows.local.command_prefect_api`). Called before Prefect is imported, which
    reads PREFECT_API_URL then; the server stops at exit, after the exit hooks Prefect
    registers on import have sent its last logs and events."""
    import atexit

    from flows import local

    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    _run(stack.enter_context, local.command_prefect_api(settings))


def _configure_logging(debug: bool) -> None:
    """Our progress lines on stderr; tracebacks only with --debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
    for name in ("tasks", "flows"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False


def _run(function, *args, **kwargs):
    """Call a command's work; a failure becomes one clear line on stderr and exit status 1."""
    if not _state["debug"]:
        _quiet_third_party()
    try:
        return function(*args, **kwargs)
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        typer.echo("error: aborted by an interrupt signal (Ctrl-C)", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {_state['settings'].redact(_describe(exc))}", err=True)
        raise typer.Exit(1) from None


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
    settings = _state["settings"]
    if (
        plain := unreachable(settings, exc)
        or refused(settings, exc)
        or refused_by_prefect(settings, exc)
    ):
        return plain
    return f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def main() -> None:
    """The `mlops` command, leaving without unloading the libraries it imported.

    Python's exit joins threads, runs the exit hooks (Prefect sends its last logs and events
    there), flushes the streams, and then tears every module down: with TensorFlow, MLflow,
    Prefect and Great Expectations loaded, a noticeable wait after everything was stored and
    printed (see docs/decisions.md). A hook registered here, before any library registers
    its own, runs after all of theirs and ends the process there.
    """
    import atexit

    status: list[int] = [1]  # an uncaught exception leaves it at 1, as Python's exit would
    atexit.register(_leave, status)
    try:
        app()
    except SystemExit as done:
        status[0] = done.code if isinstance(done.code, int) else int(done.code is not None)
        raise


def _leave(status: list[int]) -> None:
    import os

    logging.shutdown()  # its exit hook was registered before ours, so it would run after
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status[0])
