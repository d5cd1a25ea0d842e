"""How rows reach the network: chunks of an in-memory array, and Parquet files by row groups."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.models.network import KerasMLPClassifier
from tasks.models.streaming import chunked_batches


def test_rows_reach_tensorflow_in_chunks_every_row_once_an_epoch():
    rows = np.arange(1000)
    X = np.column_stack([rows, -rows]).astype("float32")
    epochs = []
    for seed in (5, 5, None):
        batches, follow = chunked_batches(X, rows, 64, seed, chunk_batches=3)  # 192 rows
        assert len(batches) == 16  # Keras knows the steps of an epoch
        passes = []
        for number in (0, 1):
            follow.on_epoch_begin(number)
            iter(batches)  # a pass begun and dropped changes nothing
            passes.append([b.numpy()[:, 0] for b, _ in batches])
        epochs.append(passes)
    for passes in epochs:
        for batches in passes:
            assert [len(b) for b in batches] == [64] * 15 + [40]
            assert sorted(np.concatenate(batches)) == list(rows)
    shuffled, again, ordered = (
        [np.concatenate(batches) for batches in passes] for passes in epochs
    )
    assert not np.array_equal(shuffled[0], shuffled[1])  # a fresh order each epoch
    np.testing.assert_array_equal(np.stack(shuffled), np.stack(again))  # seeded
    np.testing.assert_array_equal(ordered[0], rows)


def _parquet(frame, path, rows_per_group: int):
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=rows_per_group)
    return path


def test_streaming_fit_learns_from_a_parquet_file_by_row_groups(digits, tmp_path, epoch_recorder):
    frame = digits.assign(target=digits["target"].map(lambda v: f"digit-{v}"))
    path = _parquet(frame.iloc[:1400], tmp_path / "train.parquet", rows_per_group=100)
    seen = epoch_recorder()
    model = KerasMLPClassifier(epochs=15, random_state=1).fit_parquet(
        path, "target", callbacks=[seen]
    )
    assert list(model.classes_) == [f"digit-{d}" for d in range(10)]
    assert model.n_features_in_ == 64 and model.n_epochs_ == len(seen.run)
    held_out = frame.iloc[1400:]
    accuracy = (model.predict(held_out.drop(columns="target")) == held_out["target"]).mean()
    assert accuracy > 0.9


def test_streaming_fit_needs_somewhere_to_validate(digits, tmp_path):
    path = _parquet(digits, tmp_path / "one_group.parquet", rows_per_group=len(digits))
    with pytest.raises(ValueError, match="validation_path"):
        KerasMLPClassifier(epochs=1).fit_parquet(path, "target")
    validation = _parquet(digits.iloc[:300], tmp_path / "validation.parquet", 100)
    model = KerasMLPClassifier(epochs=2).fit_parquet(path, "target", validation_path=validation)
    assert len(model.history_["val_loss"]) == 2
