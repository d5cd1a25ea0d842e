"""Data URIs to DataFrames, and the content-addressed snapshot of the exact rows trained on."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits", "breast_cancer")
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class DataLoadError(Exception):
    """The data behind a URI could not be read as a table."""


@dataclass(frozen=True)
class Snapshot:
    """The exact rows of a run: their sha256 and where the copy is stored."""

    sha256: str
    uri: str
    rows: int
    columns: int


def load_frame(uri: str) -> pd.DataFrame:
    """Read a data URI (``builtin:NAME``, a local ``.csv`` / ``.parquet`` path) into a frame."""
    if uri.startswith("builtin:"):
        return _load_builtin(uri.removeprefix("builtin:"))
    if "://" in uri and not uri.startswith("file://"):
        scheme = uri.split("://", 1)[0]
        raise DataLoadError(
            f"unsupported data URI scheme '{scheme}://' in {uri!r}: use a local .csv or .parquet "
            f"path or builtin:{{{','.join(BUILTIN_DATASETS)}}}"
        )
    path = Path(uri.removeprefix("file://")).expanduser()
    if not path.is_file():
        raise DataLoadError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path)
    elif suffix in (".parquet", ".pq"):
        frame = _read_parquet(path)
    else:
        raise DataLoadError(f"unsupported file type '{suffix}' for {path}: use .csv or .parquet")
    if frame.empty:
        raise DataLoadError(f"{path} holds no rows")
    logger.info("Loaded %s: %d rows x %d columns", uri, len(frame), frame.shape[1])
    return frame


def _load_builtin(name: str) -> pd.DataFrame:
    from sklearn import datasets

    loaders = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}
    if name not in loaders:
        raise DataLoadError(
            f"unknown builtin dataset {name!r}: choose one of {', '.join(BUILTIN_DATASETS)}"
        )
    return loaders[name](as_frame=True).frame


def _read_csv(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataLoadError(f"{path} is empty")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataLoadError(f"{path} has no header or rows") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataLoadError(f"{path} is not a well-formed CSV file: {_first_line(exc)}") from exc
    _check_last_line(path, frame.shape[1])
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for delimiter, name in _DELIMITERS.items():
            if delimiter in header:
                raise DataLoadError(
                    f"{path} looks {name}-delimited (header {header[:60]!r}...): "
                    "CSV files must be comma-separated"
                )
    return frame


def _check_last_line(path: Path, columns: int) -> None:
    """A file cut off mid-row parses (the missing fields become nulls); say what it is instead."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65536))
        tail = handle.read()
    if tail.endswith(b"\n") or columns < 2:
        return
    fields = tail.rsplit(b"\n", 1)[-1].count(b",") + 1
    if fields < columns:
        raise DataLoadError(
            f"{path} looks truncated: its last line has {fields} of {columns} fields "
            "and no line ending"
        )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataLoadError(f"{path} is not a readable Parquet file: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
            values = column.to_numpy(dtype="float64", na_value=np.nan)
            values = np.where(np.isnan(values), np.nan, values).astype("<f8")
            digest.update(np.ascontiguousarray(values).tobytes())
        else:
            text = column.astype("string").fillna("\x00<NA>")
            digest.update("\x1f".join(text.tolist()).encode("utf-8"))
    return digest.hexdigest()


def store_snapshot(frame: pd.DataFrame, artifact_root: Path) -> Snapshot:
    """Write the rows to ``snapshots/<sha256>.parquet`` under the artifact root, once."""
    sha256 = frame_sha256(frame)
    path = artifact_root / "snapshots" / f"{sha256}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".parquet.partial")
        frame.to_parquet(partial, index=False)
        partial.replace(path)  # atomic: a reader never sees half a snapshot
    return Snapshot(sha256=sha256, uri=path.as_uri(), rows=len(frame), columns=frame.shape[1])


@dataclass(frozen=True)
class Splits:
    """Stratified train / validation / test rows: features and labels of each."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_val: pd.DataFrame
    y_val: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.X_train.columns]

    def sizes(self) -> dict[str, int]:
        return {
            "rows_train": len(self.X_train),
            "rows_val": len(self.X_val),
            "rows_test": len(self.X_test),
        }


def split_frame(
    frame: pd.DataFrame, target: str, test_size: float, validation_size: float, seed: int
) -> Splits:
    """Hold out a stratified test set, then a stratified validation set from the rest."""
    from sklearn.model_selection import train_test_split

    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:8])) + (", ..." if frame.shape[1] > 8 else "")
        raise DataLoadError(
            f"target column {target!r} is not in the data (columns: {shown}); pass --target COLUMN"
        )
    features, labels = frame.drop(columns=[target]), frame[target]
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            features, labels, test_size=test_size, stratify=labels, random_state=seed
        )
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=validation_size, stratify=y_rest, random_state=seed
        )
    except ValueError as exc:
        raise DataLoadError(f"cannot split {target!r} into stratified sets: {exc}") from exc
    return Splits(X_train, y_train, X_val, y_val, X_test, y_test)


def write_table(frame: pd.DataFrame, uri: str) -> str:
    """Write a frame to a local ``.csv`` or ``.parquet`` path, all at once or not at all."""
    if "://" in uri and not uri.startswith("file://"):
        raise DataLoadError(f"unsupported output URI {uri!r}: use a local .csv or .parquet path")
    path = Path(uri.removeprefix("file://")).expanduser().resolve()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataLoadError(f"unsupported output type '{suffix}' for {path}: use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if suffix == ".csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(path)
    return path.as_uri()
