"""The record of every batch `mlops predict` scores, kept for the labels that arrive later:
one Parquet part per scored partition (so memory stays bounded whatever the batch), then a
manifest that makes the batch visible, under ARTIFACT_ROOT/predictions/MODEL/BATCH/ (local
or S3)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd

from tasks.core.errors import PlatformError
from tasks.data import sources, storage

FOLDER = "predictions"
MANIFEST = "batch.json"
# The record's columns besides the model's own outputs (prediction, probability_<label>).
BATCH, KEY, VERSION, PREDICTED_AT = "batch", "key", "model_version", "predicted_at"
# The key of a batch no --id-column named: the row's position, as the output's row_id column.
POSITION = "row_id"
_BATCH_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


class BatchError(PlatformError):
    """A recorded batch that cannot be found, or a key column that cannot key a batch."""


def new_batch_id(now: datetime | None = None) -> str:
    """A batch's id: when it was scored (UTC, so ids sort by time) and six random hex digits."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_batch_id(batch: str) -> None:
    if not _BATCH_ID.fullmatch(batch):
        raise BatchError(
            f"{batch!r} is not a batch id (`mlops predict` prints one: 20260105T093000Z-3fa2c1)"
        )


def batch_uri(artifact_uri: str, model: str, batch: str) -> str:
    """Where a batch's parts and manifest lie."""
    return f"{artifact_uri.rstrip('/')}/{FOLDER}/{model}/{batch}"


@dataclass
class Manifest:
    """What a recorded batch is: who scored it, keyed by which column, its parts (file names
    in the batch's folder, ``uri``: where it lies now), and its estimated metrics."""

    batch: str
    model: str
    version: str
    key_column: str
    predicted_at: str
    uri: str
    rows: int = 0
    parts: list[str] = field(default_factory=list)
    # What predict estimated of the batch's metrics before its labels (None: nothing).
    estimated_metrics: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def key_column_check(id_column: str | None, columns, target: str, features: list[str]) -> None:
    """Refuse a key column the batch lacks, or one the model reads (the label, a feature):
    the key is set aside before the suite and the model see the rows."""
    if id_column is None:
        return
    if id_column not in columns:
        shown = ", ".join(map(str, list(columns)[:8])) + (", ..." if len(columns) > 8 else "")
        raise BatchError(f"--id-column {id_column!r} is not a column of the batch ({shown})")
    if id_column == "prediction" or id_column.startswith("probability_"):
        raise BatchError(f"--id-column {id_column!r} is the name of a column the model writes")
    if id_column == target or id_column in features:
        what = "the label" if id_column == target else "a feature"
        raise BatchError(
            f"--id-column {id_column!r} is {what} of the model: name a column that only "
            "identifies the row"
        )


class Recorder:
    """A batch recorded partition by partition: `write` one part per partition, and the
    manifest once every partition was written (`recording`)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._at = pd.Timestamp(manifest.predicted_at)

    def write(self, predictions: pd.DataFrame, key: pd.Series) -> None:
        """One partition's predictions (the model's output frame) and each row's key."""
        outputs = predictions[[c for c in predictions.columns if _is_output(c)]]
        part = outputs.reset_index(drop=True).assign(
            **{
                BATCH: self.manifest.batch,
                KEY: key.reset_index(drop=True),
                VERSION: self.manifest.version,
                PREDICTED_AT: self._at,
            }
        )
        part = part[[BATCH, KEY, *outputs.columns, VERSION, PREDICTED_AT]]
        name = f"part-{len(self.manifest.parts):05d}.parquet"
        with sources.table_writer(f"{self.manifest.uri}/{name}") as table:
            table.write(part)
        self.manifest.parts.append(name)
        self.manifest.rows += len(part)


def _is_output(column: str) -> bool:
    return column == "prediction" or column.startswith("probability_")


@contextlib.contextmanager
def recording(
    artifact_uri: str, model: str, version: str, batch: str, key_column: str | None
) -> Iterator[Recorder]:
    """Record a batch: its manifest is written when the block ends without error, and the
    parts written are removed otherwise (a batch half-scored is no batch)."""
    manifest = Manifest(
        batch=batch,
        model=model,
        version=version,
        key_column=key_column or POSITION,
        predicted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        uri=batch_uri(artifact_uri, model, batch),
    )
    recorder = Recorder(manifest)
    try:
        yield recorder
    except BaseException:
        for name in manifest.parts:
            with contextlib.suppress(Exception):
                _remove(f"{manifest.uri}/{name}")
        raise
    _write_text(f"{manifest.uri}/{MANIFEST}", json.dumps(manifest.as_dict(), indent=1))


def read_manifest(artifact_uri: str, model: str, batch: str) -> Manifest:
    """A recorded batch's manifest; BatchError naming it when there is none."""
    check_batch_id(batch)
    folder = batch_uri(artifact_uri, model, batch)
    uri = f"{folder}/{MANIFEST}"
    try:
        text = _read_text(uri)
    except (FileNotFoundError, storage.StorageError) as exc:
        if isinstance(exc, storage.StorageError) and "no object" not in str(exc):
            raise
        raise BatchError(f"{model} has no recorded batch {batch} (looked in {uri})") from None
    return Manifest(**{**json.loads(text), "uri": folder})


def read_parts(manifest: Manifest) -> Iterator[pd.DataFrame]:
    """A recorded batch, part by part."""
    for name in manifest.parts:
        yield sources.load_frame(f"{manifest.uri}/{name}")


def _write_text(uri: str, text: str) -> None:
    if storage.is_s3(uri):
        storage.write_bytes(uri, text.encode())
        return
    path = storage.local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def _read_text(uri: str) -> str:
    if storage.is_s3(uri):
        return storage.read_bytes(uri).decode()
    return storage.local_path(uri).read_text()


def _remove(uri: str) -> None:
    if storage.is_s3(uri):
        storage.delete(uri)
    else:
        storage.local_path(uri).unlink(missing_ok=True)
