"""Content-addressed snapshots of training data: the sha256 of the rows names the stored copy."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.data import storage
from tasks.data.sources import DataLoadError, table_writer


@dataclass(frozen=True)
class Snapshot:
    """The exact rows of a run: their sha256 and where the copy is stored."""

    sha256: str
    uri: str
    rows: int
    columns: int


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a canonical serialization of the rows, in their order.

    The header (column names and row count) is JSON; then each column in order: numeric
    columns as little-endian float64 with one canonical NaN, so that the same values read
    from CSV (int64) or from a builtin (float64) hash alike; other columns as their UTF-8
    strings, each terminated by a unit separator, with missing values as a marker.
    """
    digest = hashlib.sha256()
    header = {"columns": [str(c) for c in frame.columns], "rows": len(frame)}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name in frame.columns:
        column = frame[name]
        digest.update(b"\x1e")
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype="<f8", na_value=np.nan)
            missing = np.isnan(values)
            if missing.any():  # one NaN for all (a copy: the column may share these values)
                values = np.where(missing, np.nan, values)
            digest.update(np.ascontiguousarray(values))
        else:
            text = column.astype("string").fillna("\x00<NA>")
            digest.update("\x1f".join(text.tolist()).encode("utf-8"))
    return digest.hexdigest()


def store_snapshot(frame: pd.DataFrame, artifact_uri: str) -> Snapshot:
    """Write the rows to ``snapshots/<sha256>.parquet`` under the artifact root, once.

    Content-addressed: an existing snapshot of the same rows is kept; a new one is read back
    and verified before the run goes on.
    """
    sha256 = frame_sha256(frame)
    name = f"snapshots/{sha256}.parquet"
    if storage.is_s3(artifact_uri):
        uri = storage.parse(artifact_uri).child(name).uri
        stored = storage.exists(uri)
        target = uri
    else:
        path = storage.local_path(artifact_uri) / name
        uri, stored, target = path.as_uri(), path.exists(), str(path)
    if not stored:
        with table_writer(target) as table:  # atomic: a reader never sees half a snapshot
            table.write(frame)
        if storage.is_s3(uri):
            read_snapshot(uri)
    return Snapshot(sha256=sha256, uri=uri, rows=len(frame), columns=frame.shape[1])


def read_snapshot(uri: str) -> pd.DataFrame:
    """A stored snapshot, verified against the sha256 its name promises."""
    expected = Path(uri).stem
    source = io.BytesIO(storage.read_bytes(uri)) if storage.is_s3(uri) else storage.local_path(uri)
    frame = pd.read_parquet(source)
    if frame_sha256(frame) != expected:
        raise DataLoadError(f"snapshot {uri} is corrupt: its rows no longer hash to {expected}")
    return frame
