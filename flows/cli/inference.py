"""Inference: `mlops predict`, `mlops feedback`, `mlops export`, `mlops serve-model`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.output import (
    DataOption,
    JsonOption,
    prepare,
    print_json,
    run_command,
    stopped_by_signal,
    use_prefect_api,
)

IdOption = Annotated[
    str | None,
    typer.Option(
        "--id-column",
        help="The column identifying each row (set aside: no feature), which labels are "
        "joined by (default: the row's position, the output's row_id).",
    ),
]


class ExportFormat(StrEnum):
    tflite = "tflite"
    onnx = "onnx"
    keras = "keras"


def predict(
    model: Annotated[str, typer.Option(help="NAME or NAME@ALIAS.")] = "digits@champion",
    data: DataOption = "builtin:digits",
    output: Annotated[str, typer.Option(help="Where to write predictions: .csv or .parquet.")] = (
        "predictions.csv"
    ),
    id_column: IdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a batch with a registered model (its suite checks the input first); the batch is
    recorded for the labels that arrive later (`mlops feedback`)."""
    use_prefect_api(prepare())
    from flows.inference import predict_flow

    result = run_command(
        predict_flow, data_uri=data, output_uri=output, model=model, id_column=id_column
    )
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{result['rows']} predictions by {result['model']} v{result['version']} "
        f"in {result['seconds']:.2f} s -> {result['output']}"
    )
    typer.echo(f"Batch {result['batch']} recorded (keyed by {result['id_column']})")
    if estimated := result["estimated_metrics"]:
        typer.echo(
            f"Estimated before labels: {_estimates(estimated)}, from its {estimated['method']}"
        )
    if (drop := result["estimated_drop"]) and drop["degraded"]:
        typer.echo(
            f"{drop['summary']} (event mlops.performance.degraded, marked estimated, sent: a "
            "retraining awaits approval where an automation listens; `mlops feedback` with the "
            "batch's labels confirms it)"
        )
    if result["unseen_categories"]:
        shown = ", ".join(f"{k}: {v} rows" for k, v in result["unseen_categories"].items())
        typer.echo(f"Categories never seen in training (unknown bucket): {shown}")
    typer.echo(result["drift_summary"])


def _estimates(estimated: dict) -> str:
    """Each estimated metric with its interval: `accuracy 0.9512 (0.9301-0.9702)`."""
    from tasks.evaluation.estimation import values

    return "; ".join(
        f"{name} {value:.4f} ({estimated[f'{name}_interval'][0]:.4f}-"
        f"{estimated[f'{name}_interval'][1]:.4f})"
        for name, value in values(estimated).items()
    )


def feedback(
    data: Annotated[
        str,
        typer.Option(
            "--data", help="The labels: a .csv/.parquet path holding the key and the label."
        ),
    ],
    model: Annotated[
        str, typer.Option(help="NAME or NAME@ALIAS: whose last batch the labels are of.")
    ] = "digits@champion",
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="The labels' key column (default: the batch's: its --id-column, else row_id).",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(help="A batch id `mlops predict` printed (default: the version's last)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Join the labels that arrived with a recorded batch: its production metrics beside the
    test metrics; lost performance sends mlops.performance.degraded (which retrains)."""
    use_prefect_api(prepare())
    from flows.feedback import feedback_flow

    result = run_command(
        feedback_flow, model=model, labels_uri=data, id_column=id_column, batch=batch
    )
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"Batch {result['batch']} of {result['model']} v{result['version']}: "
        f"{result['matched']} labels matched, {result['unmatched']} unmatched, "
        f"{result['duplicated']} keys scored twice (of {result['batch_rows']} rows)"
    )
    reference, intervals = result["reference_metrics"], result["reference_intervals"]
    for name, value in result["metrics"].items():
        low, high = result["metric_intervals"][name]
        test = "" if name not in reference else f"; test rows {reference[name]:.4f}"
        if name in intervals:
            test += f" ({intervals[name][0]:.4f}-{intervals[name][1]:.4f})"
        typer.echo(f"  {name}: {value:.4f} ({low:.4f}-{high:.4f}){test}")
    if estimated := result["estimated_metrics"]:
        typer.echo(f"Estimated before labels: {_estimates(estimated)} ({estimated['method']})")
    typer.echo(_verdict(result["degradation"]))


def _verdict(found: dict) -> str:
    if found["difference"] is None:
        return f"Not judged: the version keeps no test {found['metric']}"
    low, high = found["difference_interval"]
    said = "Performance degraded" if found["degraded"] else "Performance held"
    sent = " (event mlops.performance.degraded sent)" if found["degraded"] else ""
    return (
        f"{said}: {found['metric']} difference {found['difference']:+.4f} "
        f"(95% {low:+.4f} to {high:+.4f}, tolerance {found['tolerance']:g}){sent}"
    )


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
    settings = prepare()
    from tasks.registry import exports

    chosen = fmt.value if fmt else None
    result = run_command(exports.export, settings, name, alias or "champion", version, out, chosen)
    if as_json:
        print_json(result)
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
    settings = prepare()
    from tasks.registry import serving, versions

    alias = alias or versions.CHAMPION
    found = run_command(versions.aliased_version, settings, name, alias)
    uri = f"models:/{name}/{found.version}"
    body = run_command(serving.example_request, settings, uri)
    url = f"http://{host}:{port}"
    typer.echo(
        f"Serving {name} v{found.version} ({alias}) at {url} once it has loaded; Ctrl-C stops.\n"
        f"Try: curl -s {url}/invocations -H 'Content-Type: application/json' -d '{body}'"
    )
    status = run_command(serving.serve, settings, uri, host, port)
    stopped_by_signal()
    if status:
        typer.echo(f"error: MLflow's scoring server exited with status {status}", err=True)
        raise typer.Exit(1)
