"""Train, validation and test rows (stratified by the label), and seeded row samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.data import DataLoadError


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


def check_target(frame: pd.DataFrame, target: str) -> None:
    """The label column must be there: name the columns that are, and the option to use."""
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:8])) + (", ..." if frame.shape[1] > 8 else "")
        raise DataLoadError(
            f"target column {target!r} is not in the data (columns: {shown}); pass --target COLUMN"
        )


def split_frame(
    frame: pd.DataFrame, target: str, test_size: float, validation_size: float, seed: int
) -> Splits:
    """Hold out a stratified test set, then a stratified validation set from the rest."""
    from sklearn.model_selection import train_test_split

    check_target(frame, target)
    labels = frame[target].to_numpy()
    try:
        rest, test = train_test_split(
            np.arange(len(frame)), test_size=test_size, stratify=labels, random_state=seed
        )
        train, val = train_test_split(
            rest, test_size=validation_size, stratify=labels[rest], random_state=seed
        )
    except ValueError as exc:
        raise DataLoadError(f"cannot split {target!r} into stratified sets: {exc}") from exc
    # One copy of the rows, in the sets' order; each set is a slice of it (a view). Taken set
    # by set, the rows were copied twice over (the rest, then train and validation from it),
    # which put a second copy on the job's peak memory (see docs/decisions.md).
    taken = frame.take(np.concatenate([train, val, test]))
    features, labels = taken.drop(columns=[target]), taken[target]
    ends = np.cumsum([len(train), len(val)])
    sets = [slice(0, ends[0]), slice(ends[0], ends[1]), slice(ends[1], None)]
    return Splits(*(part for rows in sets for part in (features.iloc[rows], labels.iloc[rows])))


def sampled_rows(total: int, most: int, seed: int) -> np.ndarray | None:
    """At most ``most`` of ``total`` row positions, drawn with ``seed``, in their order; None
    when there are no more than that (take them all)."""
    if total <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, most, replace=False))
