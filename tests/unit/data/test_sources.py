"""Data URIs, snapshots and splits: the plain functions, without Prefect or MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.data.snapshots import frame_sha256, read_snapshot, store_snapshot
from tasks.data.sources import (
    DataLoadError,
    check_output_uri,
    iter_partitions,
    load_frame,
    table_writer,
)


def test_builtin_digits_is_the_64_pixel_frame_with_labels(digits):
    assert digits.shape == (1797, 65)
    assert digits.columns[0] == "pixel_0_0" and digits.columns[-1] == "target"
    assert sorted(digits["target"].unique()) == list(range(10))


def test_csv_and_parquet_read_back_the_same_rows_and_hash(digits, tmp_path):
    digits.astype("int64").to_csv(tmp_path / "d.csv", index=False)  # pixels as 0..16
    digits.to_parquet(tmp_path / "d.parquet", index=False)
    from_csv, from_parquet = (
        load_frame(str(tmp_path / "d.csv")),
        load_frame(str(tmp_path / "d.parquet")),
    )
    assert from_csv.shape == from_parquet.shape == digits.shape
    # The CSV reads back as int64, the builtin is float64: the same values hash alike.
    assert (from_csv["pixel_0_2"].dtype, digits["pixel_0_2"].dtype) == ("int64", "float64")
    assert frame_sha256(from_csv) == frame_sha256(from_parquet) == frame_sha256(digits)


@pytest.mark.parametrize("kind", ["empty", "semicolons", "truncated"])
def test_unparseable_files_are_refused_with_what_is_wrong(bad_files, kind):
    path, words = bad_files[kind]
    with pytest.raises(DataLoadError, match=words):
        load_frame(str(path))


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("builtin:mnist", "unknown builtin dataset 'mnist'"),
        ("/nowhere/data.csv", "data file not found"),
        ("ftp://host/data.csv", "unsupported URI scheme 'ftp://'"),
        ("data.xlsx", "unsupported file type '.xlsx'"),
        ("", "empty data URI"),
        ("s3:/bucket/data.csv", "malformed S3 URI"),
        ("s3://bucket", "names a bucket but no object"),
        ("s3://bucket/data.json", "unsupported file type '.json'"),
    ],
)
def test_bad_uris_name_the_problem(uri, words):
    with pytest.raises(DataLoadError, match=words):
        load_frame(uri)


def test_outputs_stay_under_the_allowed_roots(tmp_path):
    roots = [str(tmp_path / "out"), "s3://bucket/predictions"]
    check_output_uri(str(tmp_path / "out" / "deep" / "p.csv"), roots)
    check_output_uri("s3://bucket/predictions/p.parquet", roots)
    for outside in (
        str(tmp_path / "out" / ".." / "escape.csv"),
        "/etc/cron.d/p.csv",
        "s3://bucket/predictions-other/p.csv",
        "s3://other/predictions/p.csv",
    ):
        with pytest.raises(DataLoadError, match="outside the allowed roots"):
            check_output_uri(outside, roots)
    with pytest.raises(DataLoadError, match=r"unsupported file type '\.sh'"):
        check_output_uri(str(tmp_path / "out" / "p.sh"), roots)


def _nullable_integers_without_pandas_metadata(path):
    table = pa.table({"count": pa.array([1, None, 3]), "x": pa.array([0.5, 1.5, None])})
    pq.write_table(table, path)


def _frame_writer(frame, **options):
    return lambda path: frame.to_parquet(path, **options)


NUMBERS = {"x": [0.5, 1.5, np.nan] * 100, "n": np.arange(300, dtype="uint8")}
PARQUET_FILES = {
    "float32 features and an int64 label": _frame_writer(
        pd.DataFrame({"a": np.arange(300, dtype="float32"), "target": np.arange(300) % 3}),
        row_group_size=128,
    ),
    "types interleaved, floats with NaN": _frame_writer(
        pd.DataFrame({**NUMBERS, "y": np.ones(300, "float32"), "z": np.arange(300.0)})
    ),
    "integers with nulls, no pandas metadata": _nullable_integers_without_pandas_metadata,
    "pandas nullable integers": _frame_writer(pd.DataFrame({"n": pd.array([1, 2], "Int64")})),
    "a stored index": _frame_writer(pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index([5, 6]))),
    "a sliced range index": _frame_writer(pd.DataFrame({"x": [1.0, 2.0, 3.0]}).iloc[1:]),
    "text": _frame_writer(pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"]})),
}


@pytest.mark.parametrize("write", PARQUET_FILES.values(), ids=PARQUET_FILES.keys())
def test_parquet_loads_as_pandas_reads_it(write, tmp_path):
    path = tmp_path / "t.parquet"
    write(path)
    expected = pd.read_parquet(path)
    frame = load_frame(str(path))
    pd.testing.assert_frame_equal(frame, expected)
    assert list(frame.dtypes) == list(expected.dtypes)


def test_damaged_parquet_is_refused(digits, tmp_path):
    path = tmp_path / "d.parquet"
    digits.to_parquet(path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataLoadError, match="not a readable Parquet file"):
        load_frame(str(path))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_partitions_are_bounded_and_together_are_the_whole_file(digits, tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    frame = digits.astype("int64")
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    parts = list(iter_partitions(str(path), 500))
    assert [len(p) for p in parts] == [500, 500, 500, 297]
    whole = pd.concat(parts, ignore_index=True)
    assert frame_sha256(whole) == frame_sha256(load_frame(str(path)))


def test_partitions_of_a_bad_file_fail_with_the_same_words_as_a_whole_read(bad_files):
    path, words = bad_files["semicolons"]
    with pytest.raises(DataLoadError, match=words):
        list(iter_partitions(str(path), 100))
    with pytest.raises(DataLoadError, match="data file not found"):
        list(iter_partitions("/nowhere/at/all.parquet", 100))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_written_in_partitions_appears_whole_or_not_at_all(digits, tmp_path, suffix):
    out = tmp_path / "out" / f"scored{suffix}"
    with table_writer(str(out)) as table:
        for start in range(0, len(digits), 700):
            table.write(digits.iloc[start : start + 700])
            assert not out.exists()  # nobody reads a half-written table
    assert table.rows == len(digits) and table.uri == out.as_uri()
    back = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert frame_sha256(back) == frame_sha256(digits)

    failed = tmp_path / "out" / f"failed{suffix}"
    with pytest.raises(RuntimeError, match="scoring broke"), table_writer(str(failed)) as table:
        table.write(digits.iloc[:700])
        raise RuntimeError("scoring broke")
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no partial file left


def test_a_home_with_a_space_and_a_percent_in_its_path_keeps_its_files_there(
    digits, tmp_path, monkeypatch
):
    from tasks.platform.settings import load_settings

    home = tmp_path / "my home 100%"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.delenv("MLOPS_ARTIFACT_URI", raising=False)
    settings = load_settings()
    assert "my%20home%20100%25" in settings.resolved_artifact_uri
    assert settings.artifact_root == home / "artifacts"
    snapshot = store_snapshot(digits, settings.resolved_artifact_uri)
    assert (home / "artifacts" / "snapshots" / f"{snapshot.sha256}.parquet").is_file()
    assert not (tmp_path / "my%20home%20100%25").exists()
    assert read_snapshot(snapshot.uri).equals(digits)
    assert load_frame(snapshot.uri).equals(digits)


ODD_NAMES = ["mean radius (mm)", "Größe", "price, €", "weight [kg]", " padded ", "x", "x.1"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_column_names_with_spaces_units_and_accents_load_unchanged(tmp_path, suffix):
    frame = pd.DataFrame([[1.5, 2, 3, 4, 5, 6, 7]] * 3, columns=ODD_NAMES)
    path = tmp_path / f"odd{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    assert list(load_frame(str(path)).columns) == ODD_NAMES
    assert list(next(iter_partitions(str(path), 2)).columns) == ODD_NAMES


def test_a_csv_with_two_columns_of_one_name_is_refused_naming_it(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("id,Größe,amount,Größe\n1,2,3,4\n", encoding="utf-8")
    with pytest.raises(DataLoadError, match="more than one column named 'Größe'"):
        load_frame(str(path))  # pandas alone would read the second as 'Größe.1'
    with pytest.raises(DataLoadError, match="more than one column named 'Größe'"):
        list(iter_partitions(str(path), 1))


def test_a_parquet_file_with_two_columns_of_one_name_is_refused_naming_it(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1]), pa.array([2.0])], names=["x (cm)", "x (cm)"]), path)
    for read in (load_frame, lambda uri: list(iter_partitions(uri, 1))):
        with pytest.raises(DataLoadError, match=r"more than one column named 'x \(cm\)'"):
            read(str(path))
