"""Content-addressed snapshots: one sha256 for the same rows, and a tampered copy caught."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.data.snapshots import frame_sha256, read_snapshot, store_snapshot
from tasks.data.sources import DataLoadError


def test_sha256_is_one_for_every_kind_of_missing_number_and_changes_no_row():
    odd_nan = np.array([0x7FF8000000000BAD], dtype="<u8").view("<f8")[0]  # a NaN, other bits
    floats = pd.DataFrame({"x": [1.0, np.nan, 3.0]})
    payload = pd.DataFrame({"x": [1.0, odd_nan, 3.0]})
    nullable = pd.DataFrame({"x": pd.array([1, None, 3], dtype="Int64")})
    assert frame_sha256(floats) == frame_sha256(payload) == frame_sha256(nullable)
    assert payload["x"].to_numpy().view("<u8")[1] == 0x7FF8000000000BAD  # hashed, not rewritten


def test_sha256_changes_with_one_value_and_with_row_order(digits):
    changed = digits.copy()
    changed.iloc[100, 5] += 1
    assert frame_sha256(changed) != frame_sha256(digits)
    assert frame_sha256(digits.iloc[::-1]) != frame_sha256(digits)
    assert frame_sha256(digits.rename(columns={"target": "label"})) != frame_sha256(digits)


def test_snapshot_is_content_addressed_and_reads_back_exactly(digits, tmp_path):
    snapshot = store_snapshot(digits, str(tmp_path))
    path = tmp_path / "snapshots" / f"{snapshot.sha256}.parquet"
    assert snapshot.uri == path.as_uri()
    assert frame_sha256(read_snapshot(snapshot.uri)) == snapshot.sha256
    assert store_snapshot(digits.copy(), tmp_path.as_uri()) == snapshot
    assert [p.name for p in (tmp_path / "snapshots").iterdir()] == [path.name]


def test_a_tampered_snapshot_is_caught_when_read_back(digits, tmp_path):
    snapshot = store_snapshot(digits, str(tmp_path))
    path = tmp_path / "snapshots" / f"{snapshot.sha256}.parquet"
    digits.head(100).to_parquet(path, index=False)
    with pytest.raises(DataLoadError, match="is corrupt"):
        read_snapshot(snapshot.uri)
