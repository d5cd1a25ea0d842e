"""Resumable fits: a fit killed part-way resumes where it was, and a backup folder has one owner."""

from __future__ import annotations

import shutil

import pytest

from tasks.models.checkpoints import claimed
from tasks.models.network import KerasMLPClassifier


def test_an_interrupted_fit_resumes_from_its_last_epoch(digits, tmp_path, epoch_recorder):
    X, y = digits.drop(columns="target").iloc[:1200], digits["target"].iloc[:1200]
    checkpoints = tmp_path / "checkpoints"
    first = epoch_recorder(die_at=4)
    with pytest.raises(KeyboardInterrupt):
        KerasMLPClassifier(epochs=10, patience=50, checkpoint_dir=checkpoints).fit(
            X, y, callbacks=[first]
        )
    assert first.run == [0, 1, 2, 3] and any(checkpoints.iterdir())

    second = epoch_recorder()
    model = KerasMLPClassifier(epochs=10, patience=50, checkpoint_dir=checkpoints).fit(
        X, y, callbacks=[second]
    )
    assert second.run == [4, 5, 6, 7, 8, 9]
    assert model.n_epochs_ == len(model.history_["val_loss"]) == 10
    # The optimizer's state came back too: its step count spans all ten epochs (960 rows).
    assert int(model.model_.optimizer.iterations.numpy()) == 10 * (960 // 64)
    assert model.history_["loss"][0] > model.history_["loss"][4] > model.history_["loss"][9]
    assert (
        model.predict(digits.drop(columns="target").iloc[1200:]) == digits["target"].iloc[1200:]
    ).mean() > 0.9
    assert not checkpoints.exists()  # a completed fit leaves no backup behind


def test_a_backup_folder_belongs_to_one_fit_at_a_time(tmp_path):
    folder = tmp_path / "job" / "keras_mlp"
    with claimed(folder) as first:
        assert first == folder
        with claimed(folder) as second:  # an identical job at the same moment
            assert second != folder and second.parent == folder.parent
            assert second.is_dir()
        assert not second.exists()  # its private folder goes with it
    with pytest.raises(KeyboardInterrupt), claimed(folder) as again:
        assert again == folder  # released: the next run resumes from the shared one
        again.mkdir()
        (again / "progress.json").touch()
        raise KeyboardInterrupt  # the fit dies: its backups stay for the rerun
    with claimed(folder) as resumed:
        assert resumed == folder and (resumed / "progress.json").exists()
        shutil.rmtree(resumed)  # the fit completes: it removes its backups
    assert not folder.parent.exists()  # nothing left: no lock files, no empty job folders
