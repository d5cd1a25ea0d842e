"""`mlops export`: a registered version's compact file (int8 TFLite, ONNX) or its float32
network, written where the user asks, with what it measured on its test rows at registration."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from tasks.evaluation.compression import (
    ARTIFACT_DIR,
    FILE_NAMES,
    KERAS,
    NETWORK_FAMILY,
    Compression,
    ExportRefused,
    check_format,
    formats,
    skipped,
)
from tasks.platform.settings import Settings
from tasks.registry import versions
from tasks.registry.store import RegistryError, client, is_registered


def export(
    settings: Settings, name: str, alias: str, version: str | None, out: Path, chosen: str | None
) -> dict[str, Any]:
    """Write a registered version as a file of the ``chosen`` format (default: its family's
    first) to ``out``; what it measured on its test rows, and the input the file reads."""
    found = _registered(settings, name, alias, version)
    family = found.tags.get("model_family", "")
    chosen = chosen or formats(family)[0]
    check_format(family, chosen)
    recorded = Compression.from_tags(found.tags) or skipped(
        chosen, "test_accuracy", "it was registered before compact variants were made"
    )
    if chosen != KERAS and not recorded.kept:
        also = " (--format keras writes the float32 network)" if family == NETWORK_FAMILY else ""
        raise ExportRefused(
            f"{name} v{found.version} keeps no {chosen} file: {recorded.reason}{also}"
        )
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    uri = f"models:/{name}/{found.version}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        if chosen == KERAS:
            folder = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
            source = Path(folder) / "artifacts" / "network.keras"
        else:
            artifact = f"{ARTIFACT_DIR}/{FILE_NAMES[chosen]}"
            source = client(settings).download_artifacts(found.run_id, artifact, scratch)
        shutil.copyfile(source, out)
    signature = mlflow.models.get_model_info(uri).signature
    metric, float32 = recorded.metric, chosen == KERAS
    return {
        "model": name,
        "version": str(found.version),
        "family": family,
        "path": str(out),
        "format": chosen,
        "size_bytes": out.stat().st_size,
        "float_size_bytes": recorded.float_size_bytes,
        "metric": metric,
        metric: recorded.float_score if float32 else recorded.score,
        f"float_{metric}": recorded.float_score,
        "latency_ms_per_1k": (
            recorded.float_latency_ms_per_1k if float32 else recorded.latency_ms_per_1k
        ),
        "float_latency_ms_per_1k": recorded.float_latency_ms_per_1k,
        "inputs": {
            "columns": signature.inputs.input_names(),
            "dtype": "float32",
            "encoded": recorded.encoded,
        },
    }


def _registered(settings: Settings, name: str, alias: str, version: str | None):
    """The READY version asked for, or the one holding ``alias``; a RegistryError if none."""

    if version is None:
        version = versions.alias_holder(settings, name, alias)
        if version is None and is_registered(client(settings), name):
            raise RegistryError(f"no version of {name} holds the alias {alias!r}")
    return versions.ready_version(settings, name, version or "")
