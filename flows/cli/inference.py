"""Inference: `mlops predict`, `mlops export`, `mlops serve-model`."""

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
    as_json: JsonOption = False,
) -> None:
    """Score a batch with a registered model (its suite checks the input first)."""
    use_prefect_api(prepare())
    from flows.inference import predict_flow

    result = run_command(predict_flow, data_uri=data, output_uri=output, model=model)
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{result['rows']} predictions by {result['model']} v{result['version']} "
        f"in {result['seconds']:.2f} s -> {result['output']}"
    )
    if result["unseen_categories"]:
        shown = ", ".join(f"{k}: {v} rows" for k, v in result["unseen_categories"].items())
        typer.echo(f"Categories never seen in training (unknown bucket): {shown}")
    typer.echo(result["drift_summary"])


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
