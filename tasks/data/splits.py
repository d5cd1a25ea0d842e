"""Train, validation and test rows (stratified by the label, or by bins of a numeric target),
and seeded row samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.core.errors import first_line
from tasks.data.features import Task, infer_task
from tasks.data.sources import DataLoadError

# Bins of equal counts a regression target is stratified by, at most.
QUANTILE_BINS = 10


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


def quantile_bins(values: pd.Series, test_size: float, validation_size: float) -> np.ndarray | None:
    """A numeric target's bin of each row: up to QUANTILE_BINS of equal counts (fewer where
    values repeat), each of enough rows for the smallest of the three sets to get two of
    them; None when there are too few rows (or too few distinct values) for two bins."""
    rest = 1 - test_size
    smallest = min(test_size, rest * validation_size, rest * (1 - validation_size))
    needed = math.ceil(2 / smallest)
    for bins in range(min(QUANTILE_BINS, len(values) // needed), 1, -1):
        codes = pd.qcut(values, bins, labels=False, duplicates="drop")
        counts = codes.value_counts()
        if len(counts) > 1 and counts.min() >= needed:
            return codes.to_numpy()
    return None


def split_frame(
    frame: pd.DataFrame,
    target: str,
    test_size: float,
    validation_size: float,
    seed: int,
    task: Task = "classification",
    consume: bool = False,
) -> Splits:
    """Hold out a test set, then a validation set from the rest, both stratified: by the
    label for classification; for regression by quantile bins of the target (unstratified
    when it has too few rows for them), so that each set's targets spread like the whole.

    With ``consume``, the columns move out of ``frame`` one at a time into the sets (it ends
    empty), so the rows are not held twice while they are split."""
    from sklearn.model_selection import train_test_split

    check_target(frame, target)
    labels = frame[target]
    if task == "regression":
        strata = quantile_bins(labels, test_size, validation_size)
    else:
        strata = labels.to_numpy()
    try:
        rest, test = train_test_split(
            np.arange(len(frame)), test_size=test_size, stratify=strata, random_state=seed
        )
        train, val = train_test_split(
            rest,
            test_size=validation_size,
            stratify=None if strata is None else strata[rest],
            random_state=seed,
        )
    except ValueError as exc:
        raise DataLoadError(_unsplittable(labels, task, exc)) from exc
    # One copy of the rows, in the sets' order; each set is a slice of it (a view). Taken set
    # by set, the rows were copied twice over (the rest, then train and validation from it),
    # which put a second copy on the job's peak memory (see docs/decisions.md).
    order = np.concatenate([train, val, test])
    taken = _moved(frame, order) if consume else frame.take(order)
    features, labels = taken.drop(columns=[target]), taken[target]
    ends = np.cumsum([len(train), len(val)])
    sets = [slice(0, ends[0]), slice(ends[0], ends[1]), slice(ends[1], None)]
    return Splits(*(part for rows in sets for part in (features.iloc[rows], labels.iloc[rows])))


def _moved(frame: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """The rows of ``frame`` in ``order``, taken column by column, each column dropped from
    ``frame`` once taken: the source's memory goes as the copy's comes (columns that share a
    block go with the block's last). Not consolidated: that would copy every number again."""
    index, columns = frame.index[order], {}
    for name in list(frame.columns):
        columns[name] = frame.pop(name).array.take(order)
    return pd.DataFrame(columns, index=index, copy=False)


def _unsplittable(labels: pd.Series, task: Task, exc: ValueError) -> str:
    """Why the rows cannot be split; for classes that are numbers, the option to use instead
    (and not scikit-learn's list of every value that occurs once)."""
    name = labels.name
    if task == "regression":
        return f"cannot split {name!r} into train, validation and test sets: {first_line(exc)}"
    if infer_task(labels) == "regression":
        return (
            f"cannot split {name!r} into stratified sets: its values are numbers "
            f"({labels.nunique()} distinct), not classes; pass "
            "--task regression to predict them"
        )
    return f"cannot split {name!r} into stratified sets: {first_line(exc)}"


def sampled_rows(total: int, most: int, seed: int) -> np.ndarray | None:
    """At most ``most`` of ``total`` row positions, drawn with ``seed``, in their order; None
    when there are no more than that (take them all)."""
    if total <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, most, replace=False))
