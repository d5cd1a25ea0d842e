"""Resumable fits: a backup of the network's fit every epoch, and a claim on its folder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class FitProgress:
    """A fit's backup, made at the end of every epoch: the weights, the optimizer's state, the
    epochs' logs and the early stopping's state (patience used, the best weights so far).

    A fit that resumes from it stops when, and keeps the weights that, the uninterrupted fit
    would have. Keras's BackupAndRestore restores the first two but not the early stopping,
    and writes them as HDF5, which takes several times as long each epoch as NumPy's .npz
    (see docs/decisions.md). Each file is written whole before progress.json names it.
    """

    def __init__(self, folder: Path, stop):
        self.folder = folder
        self.stop = stop  # Keras hands every callback the model before training begins
        self.history: dict[str, list[float]] = {}

    def _variables(self) -> list:
        model = self.stop.model
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        return [*model.weights, *model.optimizer.variables]

    def restore(self, logs=None) -> None:
        state = self.folder / "progress.json"
        if not state.exists():
            return
        saved = json.loads(state.read_text())
        with np.load(self.folder / saved["state"]) as values:
            for index, variable in enumerate(self._variables()):
                variable.assign(values[f"arr_{index}"])
        self.stop.model._initial_epoch = saved["epoch"]  # as BackupAndRestore resumes a fit
        self.history = saved["history"]
        self.stop.wait, self.stop.best, self.stop.best_epoch = saved["early_stopping"]
        with np.load(self.folder / "best_weights.npz") as best:
            self.stop.best_weights = [best[f"arr_{i}"] for i in range(len(best.files))]
        logger.info("Resuming from %s after %d epochs", self.folder, len(self.history["loss"]))

    def save(self, epoch: int, logs: dict) -> None:
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.stop.best_epoch == epoch:
            np.savez(self.folder / "best_weights.npz", *self.stop.best_weights)
        state = f"state-{epoch + 1}.npz"
        np.savez(self.folder / state, *(variable.numpy() for variable in self._variables()))
        saved = {
            "epoch": epoch + 1,
            "state": state,
            "history": self.history,
            "early_stopping": [self.stop.wait, float(self.stop.best), self.stop.best_epoch],
        }
        partial = self.folder / "progress.json.partial"
        partial.write_text(json.dumps(saved))
        partial.replace(self.folder / "progress.json")
        (self.folder / f"state-{epoch}.npz").unlink(missing_ok=True)

    def remove(self, logs=None) -> None:
        """The fit is complete: nothing to resume from."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _lock(path: Path):
    """``path`` opened and, when no other process holds it, locked: (handle, owned).

    A completed fit removes its lock file (see ``claimed``), so a file locked here may have
    been unlinked in between, or its folder removed before the open: then lock the new one.
    """
    import fcntl

    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = path.open("w")
        except FileNotFoundError:  # the folder went with the last completed fit
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle, False
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle, True
        handle.close()


@contextlib.contextmanager
def claimed(folder: Path) -> Iterator[Path]:
    """A fit's backup folder, for this process alone while it trains.

    Two identical jobs at once share a folder name; the second trains from a fresh private
    folder instead of trampling the first one's backups. The claim is a file lock, so the
    folder of a process that was killed is free again for the rerun that resumes from it.
    A fit that completes (its backups already gone) removes the lock file, and the job's
    folder once no other fit is in it: checkpoints hold nothing but unfinished fits.
    """
    import tempfile

    lock = folder.parent / f"{folder.name}.lock"
    handle, owned = _lock(lock)
    with handle:
        if owned:
            yield folder
            lock.unlink()
        else:
            with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f"{folder.name}-") as own:
                yield Path(own)
    with contextlib.suppress(OSError):  # not empty: another fit of the job is under way
        folder.parent.rmdir()
