"""Data URIs to DataFrames, and the content-addressed snapshot of the exact rows trained on."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import PlatformError, first_line
from tasks.data import storage

logger = logging.getLogger(__name__)


BUILTIN_DATASETS = ("digits", "breast_cancer")
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class DataLoadError(PlatformError):
    """The data behind a URI could not be read as a table."""


_USE = f"a .csv or .parquet path, s3://bucket/key, or builtin:{{{','.join(BUILTIN_DATASETS)}}}"


def check_uri(uri: str, suffixes: tuple[str, ...] = (".csv", ".parquet", ".pq")) -> None:
    """Refuse a malformed data URI before any work: unknown scheme or builtin, an S3 URI
    without bucket or key, a file type we cannot read."""
    if not uri.strip():
        raise DataLoadError(f"empty data URI: use {_USE}")
    if uri.startswith("builtin:"):
        name = uri.removeprefix("builtin:")
        if name not in BUILTIN_DATASETS:
            raise DataLoadError(
                f"unknown builtin dataset {name!r}: choose one of {', '.join(BUILTIN_DATASETS)}"
            )
        return
    if "://" in uri and not uri.startswith(("file://", "s3://")):
        scheme = uri.split("://", 1)[0]
        raise DataLoadError(f"unsupported URI scheme '{scheme}://' in {uri!r}: use {_USE}")
    if storage.is_s3(uri):
        location = storage.parse(uri)
        if not location.key:
            raise DataLoadError(f"{uri!r} names a bucket but no object: use s3://bucket/key.csv")
    elif uri.startswith("s3:"):
        raise DataLoadError(f"malformed S3 URI {uri!r}: use s3://bucket/key")
    suffix = Path(uri).suffix.lower()
    if suffix not in suffixes:
        kinds = " or ".join(sorted({s for s in suffixes if s != ".pq"}))
        raise DataLoadError(f"unsupported file type '{suffix}' for {uri}: use {kinds}")


def check_output_uri(uri: str, roots: list[str]) -> None:
    """An output URI must be a table file under one of the allowed roots (local folders or
    S3 prefixes): a form filled in the UI cannot write over a worker's files elsewhere."""
    check_uri(uri, suffixes=(".csv", ".parquet"))
    if storage.is_s3(uri):
        inside = any(
            uri.startswith(root.rstrip("/") + "/") for root in roots if storage.is_s3(root)
        )
    else:
        path = storage.local_path(uri).expanduser().resolve()
        inside = any(
            path.is_relative_to(storage.local_path(root).expanduser().resolve())
            for root in roots
            if not storage.is_s3(root)
        )
    if not inside:
        raise DataLoadError(
            f"output {uri} is outside the allowed roots ({', '.join(roots)}): write under one "
            "of them, or add a root to MLOPS_OUTPUT_ROOTS"
        )


def load_frame(uri: str) -> pd.DataFrame:
    """Read a data URI (``builtin:NAME``, ``s3://bucket/key``, a local ``.csv`` / ``.parquet``
    path) into a frame."""
    check_uri(uri)
    if uri.startswith("builtin:"):
        return _load_builtin(uri.removeprefix("builtin:"))
    suffix = Path(uri).suffix.lower()
    source = io.BytesIO(storage.read_bytes(uri)) if storage.is_s3(uri) else _local_file(uri)
    frame = _read_csv(source, uri) if suffix == ".csv" else _read_parquet(source, uri)
    release_freed_memory()  # what reading went through
    if frame.empty:
        raise DataLoadError(f"{uri} holds no rows")
    logger.info("Loaded %s: %d rows x %d columns", uri, len(frame), frame.shape[1])
    return frame


def release_freed_memory() -> None:
    """Hand the memory of dropped tables back to the system. pyarrow's allocator (what pandas
    reads from Parquet, text columns) and glibc's (validation's temporaries) keep freed pages
    for their own reuse, which the next allocations (TensorFlow's) cannot use."""
    import ctypes
    import ctypes.util

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if hasattr(libc, "malloc_trim"):  # glibc only: musl and macOS have no such call
        libc.malloc_trim(0)


def _local_file(uri: str) -> Path:
    source = storage.local_path(uri).expanduser()
    if not source.is_file():
        raise DataLoadError(f"data file not found: {source}")
    return source


def _load_builtin(name: str) -> pd.DataFrame:
    from sklearn import datasets

    loaders = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}
    return loaders[name](as_frame=True).frame


Source = Path | io.BytesIO


def _size(source: Source) -> int:
    return source.stat().st_size if isinstance(source, Path) else source.getbuffer().nbytes


def _read_csv(source: Source, path: str) -> pd.DataFrame:
    return next(_csv_chunks(source, path, None))


def _csv_chunks(source: Source, path: str, rows: int | None) -> Iterator[pd.DataFrame]:
    """A CSV file `rows` rows at a time (all at once for None), its faults named in words."""
    if _size(source) == 0:
        raise DataLoadError(f"{path} is empty")
    try:
        chunks = pd.read_csv(source, chunksize=rows) if rows else iter([pd.read_csv(source)])
        for index, frame in enumerate(chunks):
            if index == 0:
                _check_shape(source, path, frame)
            yield frame
    except pd.errors.EmptyDataError as exc:
        raise DataLoadError(f"{path} has no header or rows") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataLoadError(f"{path} is not a well-formed CSV file: {first_line(exc)}") from exc


def _check_shape(source: Source, path: str, frame: pd.DataFrame) -> None:
    _check_unique(_csv_header(source), path)
    _check_last_line(source, path, frame.shape[1])
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for delimiter, name in _DELIMITERS.items():
            if delimiter in header:
                raise DataLoadError(
                    f"{path} looks {name}-delimited (header {header[:60]!r}...): "
                    "CSV files must be comma-separated"
                )


def _csv_header(source: Source) -> list[str]:
    """The column names as the file's first line spells them: pandas renames a second ``x``
    to ``x.1``, which would hide the duplicate."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            line = handle.readline()
    else:  # pandas is reading the same buffer: put it back where pandas left it
        position = source.tell()
        source.seek(0)
        line = source.readline()
        source.seek(position)
    return next(csv.reader([line.decode("utf-8-sig", errors="replace").rstrip("\r\n")]), [])


def _check_unique(names: list[str], path: str) -> None:
    """Refuse a table with two columns of one name: which one a suite or a model means is
    anyone's guess. (Blank names are pandas's "Unnamed: N", distinct already.)"""
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        shown = ", ".join(map(repr, twice))
        raise DataLoadError(
            f"{path} has more than one column named {shown}: give each column its own name"
        )


def _check_last_line(source: Source, path: str, columns: int) -> None:
    """A file cut off mid-row parses (the missing fields become nulls); say what it is instead."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            handle.seek(max(0, _size(source) - 65536))
            tail = handle.read()
    else:
        tail = source.getvalue()[-65536:]
    if tail.endswith(b"\n") or columns < 2:
        return
    fields = tail.rsplit(b"\n", 1)[-1].count(b",") + 1
    if fields < columns:
        raise DataLoadError(
            f"{path} looks truncated: its last line has {fields} of {columns} fields "
            "and no line ending"
        )


def _parquet_file(source: Source, path: str):
    """A Parquet file opened (its footer read, none of its rows), refused if damaged or if two
    columns share a name."""
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(source)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise _unreadable_parquet(path, exc) from exc
    _check_unique(file.schema_arrow.names, path)
    return file


def _unreadable_parquet(path: str, exc: Exception) -> DataLoadError:
    return DataLoadError(f"{path} is not a readable Parquet file: {first_line(exc)}")


def _read_parquet(source: Source, path: str) -> pd.DataFrame:
    file = _parquet_file(source, path)
    try:
        frame = _numeric_blocks(file) if _all_numeric(file) else None
        if frame is None:
            if isinstance(source, io.BytesIO):
                source.seek(0)
            # A block per column, so that a split moving the columns out one at a time frees
            # each as it goes (tasks/data/splits.py); and the arrow table freed as it converts.
            blocks = {"split_blocks": True, "self_destruct": True}
            frame = pd.read_parquet(source, to_pandas_kwargs=blocks)
        return frame
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise _unreadable_parquet(path, exc) from exc


def _all_numeric(file) -> bool:
    """Every column plain integers or floats, as pandas would read them back (no nullable
    dtype and no index but the default one in the metadata pandas stores with a frame)."""
    from pyarrow import types

    schema = file.schema_arrow
    if not all(types.is_integer(f.type) or types.is_floating(f.type) for f in schema):
        return False
    pandas = schema.pandas_metadata or {}
    stored = {c["name"]: c["numpy_type"] for c in pandas.get("columns", []) if c["name"]}
    default_index = {"kind": "range", "name": None, "start": 0, "step": 1}
    return all(
        stored.get(f.name, "as read") in ("as read", np.dtype(f.type.to_pandas_dtype()).name)
        for f in schema
    ) and all(
        isinstance(index, dict) and default_index.items() <= index.items()
        for index in pandas.get("index_columns", [])
    )


def _numeric_blocks(file) -> pd.DataFrame | None:
    """A Parquet file of numbers read a column at a time into one preallocated array per run
    of columns of one type, so the frame costs its own size and little more.

    pandas's reader holds the file's decoded table and the frame it converts it into at once,
    and Arrow's allocator keeps what it freed, so a load peaks at several times the frame's
    size; read a column at a time, it holds little more than the frame (row group by row
    group, it would hold each group's decoding buffers at once; see docs/decisions.md). The
    frame is the same (``DataFrame.equals``): one block per run, as
    pandas consolidates, floats' nulls as NaN. None for an integer column with nulls (pandas
    makes it float): the general reader takes that file.
    """
    schema, rows = file.schema_arrow, file.metadata.num_rows
    runs: list[tuple[np.dtype, list[str]]] = []
    for field in schema:
        dtype = np.dtype(field.type.to_pandas_dtype())
        if runs and runs[-1][0] == dtype:
            runs[-1][1].append(field.name)
        else:
            runs.append((dtype, [field.name]))
    blocks = [np.empty((len(names), rows), dtype) for dtype, names in runs]
    for block, (_, names) in zip(blocks, runs, strict=True):
        for values, name in zip(block, names, strict=True):
            start = 0
            for chunk in file.read(columns=[name], use_threads=False).column(0).chunks:
                if chunk.null_count and block.dtype.kind != "f":
                    return None
                values[start : start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                start += len(chunk)
    frames = [
        pd.DataFrame(block.T, columns=names, copy=False)
        for block, (_, names) in zip(blocks, runs, strict=True)
    ]
    return frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)


def _parquet_chunks(source: Path, path: str, rows: int) -> Iterator[pd.DataFrame]:
    """A Parquet file `rows` rows at a time, read batch by batch (never the whole file)."""
    import pyarrow as pa

    file = _parquet_file(source, path)
    try:
        for batch in file.iter_batches(batch_size=rows):
            yield pa.Table.from_batches([batch]).to_pandas()
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise _unreadable_parquet(path, exc) from exc


def iter_partitions(uri: str, rows: int) -> Iterator[pd.DataFrame]:
    """The rows behind a data URI, at most `rows` at a time, in their order: memory stays
    bounded by the partition, not the file (an S3 object is streamed to a local file first)."""
    check_uri(uri)
    if uri.startswith("builtin:"):
        frame = load_frame(uri)
        yield from (frame.iloc[start : start + rows] for start in range(0, len(frame), rows))
        return
    with contextlib.ExitStack() as stack:
        if storage.is_s3(uri):
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            source = scratch / Path(storage.parse(uri).key).name
            storage.download(uri, source)
        else:
            source = _local_file(uri)
        chunks = (
            _csv_chunks(source, uri, rows)
            if Path(uri).suffix.lower() == ".csv"
            else _parquet_chunks(source, uri, rows)
        )
        empty = True
        for frame in chunks:
            empty = empty and frame.empty
            if not frame.empty:
                yield frame
        if empty:
            raise DataLoadError(f"{uri} holds no rows")


class TableFile:
    """A .csv or .parquet file written one partition after another."""

    def __init__(self, path: Path, suffix: str, uri: str) -> None:
        self.path, self.suffix, self.rows = path, suffix, 0
        self.uri = uri  # where the table appears once complete
        self._parquet = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".csv":
            frame.to_csv(
                self.path, mode="a" if self.rows else "w", header=not self.rows, index=False
            )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                # A column's dictionary gives up far sooner than pyarrow's default: columns of
                # a few distinct values (pixels, categories) still get one, and columns of
                # many (float features) soon fall back to plain encoding, which writes faster
                # and smaller (see docs/decisions.md).
                self._parquet = pq.ParquetWriter(
                    self.path, table.schema, dictionary_pagesize_limit=65_536
                )
            self._parquet.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


@contextlib.contextmanager
def table_writer(uri: str) -> Iterator[TableFile]:
    """Write a table partition by partition to a .csv or .parquet path or S3 key: it appears
    whole when the block ends without error, and not at all otherwise (nothing half-written)."""
    check_uri(uri, suffixes=(".csv", ".parquet"))
    suffix = Path(uri).suffix.lower()
    with contextlib.ExitStack() as stack:
        if storage.is_s3(uri):
            partial = Path(stack.enter_context(tempfile.TemporaryDirectory())) / f"table{suffix}"
            final = storage.parse(uri).uri
        else:
            path = storage.local_path(uri).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            stack.callback(partial.unlink, missing_ok=True)
            final = path.as_uri()
        table = TableFile(partial, suffix, final)
        try:
            yield table
        finally:
            table.close()
        if storage.is_s3(uri):
            storage.upload(partial, uri)  # one object, visible only once complete
        else:
            partial.replace(path)
