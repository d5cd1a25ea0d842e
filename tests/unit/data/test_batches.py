"""The record of a scored batch: a part per partition, visible once whole, read back as written."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.data import batches


def outputs(rows: range) -> pd.DataFrame:
    """A classifier's output frame as `mlops predict` writes it (row ids first)."""
    return pd.DataFrame(
        {
            "row_id": list(rows),
            "prediction": [r % 2 for r in rows],
            "probability_0": [0.3] * len(rows),
            "probability_1": [0.7] * len(rows),
        }
    )


def test_a_batch_is_recorded_a_part_per_partition_and_read_back_by_its_id(tmp_path):
    root = (tmp_path / "artifacts").as_uri()
    batch = batches.new_batch_id()
    with batches.recording(root, "digits", "3", batch, "order_id") as record:
        for rows in (range(0, 4), range(4, 7)):
            scored = outputs(rows)
            record.write(scored, pd.Series([f"o-{r}" for r in rows]))
    manifest = batches.read_manifest(root, "digits", batch)
    assert (manifest.version, manifest.key_column, manifest.rows) == ("3", "order_id", 7)
    assert len(manifest.parts) == 2
    parts = list(batches.read_parts(manifest))
    assert [len(p) for p in parts] == [4, 3]
    whole = pd.concat(parts)
    assert list(whole.columns) == [
        "batch", "key", "prediction", "probability_0", "probability_1", "model_version",
        "predicted_at",
    ]  # fmt: skip
    assert list(whole["key"]) == [f"o-{r}" for r in range(7)]
    assert set(whole["batch"]) == {batch} and set(whole["model_version"]) == {"3"}


def test_a_batch_that_fails_part_way_leaves_nothing(tmp_path):
    root = (tmp_path / "artifacts").as_uri()
    batch = batches.new_batch_id()
    with pytest.raises(RuntimeError), batches.recording(root, "digits", "3", batch, None) as rec:
        rec.write(outputs(range(3)), pd.Series(range(3)))
        raise RuntimeError("the second partition fails the suite")
    assert not list((tmp_path / "artifacts").rglob("*.parquet"))
    with pytest.raises(batches.BatchError, match=f"digits has no recorded batch {batch}"):
        batches.read_manifest(root, "digits", batch)


def test_a_batch_id_is_checked_before_it_names_a_path(tmp_path):
    with pytest.raises(batches.BatchError, match="is not a batch id"):
        batches.read_manifest(tmp_path.as_uri(), "digits", "../../etc")


@pytest.mark.parametrize(
    ("column", "words"),
    [
        ("order", "is not a column of the batch"),
        ("target", "is the label of the model"),
        ("pixel_0_0", "is a feature of the model"),
        ("prediction", "a column the model writes"),
    ],
)
def test_a_key_column_must_be_the_batchs_and_no_input_of_the_model(column, words):
    with pytest.raises(batches.BatchError, match=words):
        batches.key_column_check(
            column, ["order_id", "pixel_0_0", "target", "prediction"], "target", ["pixel_0_0"]
        )
