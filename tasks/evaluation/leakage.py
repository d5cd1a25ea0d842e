"""Leak screening: a numeric feature that alone predicts the label almost perfectly, where the
job's other features together cannot, is likely the label recorded another way (a row number
of a table sorted by it, a date or code set after the outcome). It is flagged, not dropped:
the user decides (`--exclude`, or the suite's feature types)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.data.features import Task
from tasks.models.preprocessing import as_text

# The held-out score (balanced accuracy, or R²) from which one feature alone is suspected.
LEAK_SCORE = 0.98
# Rows of each set the screen fits on (training) and scores on (validation): it stays cheap.
SAMPLE_ROWS = 2_000
# Fewer held-out rows than this cannot tell almost perfect from lucky: nothing is screened.
MIN_ROWS = 20
# The single-feature tree: shallow, a handful of leaves that are not single rows.
DEPTH, LEAF_ROWS = 6, 5


@dataclass(frozen=True)
class Leak:
    """A feature that alone scores ``score`` on held-out rows, where the job's other
    features together score ``others`` (None: there are none)."""

    feature: str
    score: float
    metric: str
    others: float | None

    def as_dict(self) -> dict[str, float | str]:
        return {"feature": self.feature, "score": round(self.score, 4)}

    def describe(self, shown: str | None = None) -> str:
        """In words; ``shown``: how the column is named (default: quoted)."""
        rest = (
            "there are no other features"
            if self.others is None
            else f"the other features together: {self.others:.3f}"
        )
        return (
            f"column {shown or repr(self.feature)} alone predicts the label with {self.metric} "
            f"{self.score:.3f} on held-out rows ({rest})"
        )


def suspected_leaks(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_held: pd.DataFrame,
    y_held: pd.Series,
    numeric: tuple[str, ...],
    task: Task,
    seed: int,
) -> tuple[Leak, ...]:
    """The numeric features whose shallow tree, fitted on a sample of the training rows,
    scores at least LEAK_SCORE on a sample of the held-out rows, where a model of all the
    other features (those suspected left out) scores below it; the best first."""
    fit_X, fit_y = _sample(X_train, y_train, seed)
    held_X, held_y = _sample(X_held, y_held, seed)
    if len(held_y) < MIN_ROWS or fit_y.nunique() < 2:
        return ()
    alone = {
        name: _score(_tree(task, seed), fit_X[[name]], held_X[[name]], fit_y, held_y, task)
        for name in numeric
    }
    suspects = [name for name, score in alone.items() if score >= LEAK_SCORE]
    if not suspects:
        return ()
    rest = [str(c) for c in X_train.columns if c not in suspects]
    others = (
        _score(_model(task, seed), *_coded(fit_X[rest], held_X[rest]), fit_y, held_y, task)
        if rest
        else None
    )
    if others is not None and others >= LEAK_SCORE:
        return ()  # the task is that easy: the other features reach it too
    metric = "balanced accuracy" if task == "classification" else "R²"
    found = [Leak(name, alone[name], metric, others) for name in suspects]
    return tuple(sorted(found, key=lambda leak: -leak.score))


def tag(leaks: tuple[Leak, ...]) -> str:
    """The run tag's value: each suspected feature with its score, or none."""
    return "; ".join(f"{leak.feature} ({leak.score:.3f})" for leak in leaks) or "none"


def _sample(X: pd.DataFrame, y: pd.Series, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    if len(X) <= SAMPLE_ROWS:
        return X, pd.Series(np.asarray(y), index=X.index)
    rows = np.random.default_rng(seed).choice(len(X), SAMPLE_ROWS, replace=False)
    return X.iloc[rows], pd.Series(np.asarray(y)[rows], index=X.index[rows])


def _tree(task: Task, seed: int):
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    tree = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
    return tree(max_depth=DEPTH, min_samples_leaf=LEAF_ROWS, random_state=seed)


def _model(task: Task, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    boosted = (
        HistGradientBoostingClassifier
        if task == "classification"
        else HistGradientBoostingRegressor
    )
    return boosted(random_state=seed)


def _coded(fit: pd.DataFrame, held: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sets as numbers a tree reads: text columns as the codes of the fit rows' values
    (missing, or unseen, as NaN), numbers as they are."""
    known = {
        name: as_text(values).dropna().unique()
        for name, values in fit.items()
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    }

    def codes(frame: pd.DataFrame) -> pd.DataFrame:
        columns = {}
        for name, values in known.items():
            found = pd.Categorical(as_text(frame[name]), categories=values).codes
            columns[name] = np.where(found >= 0, found, np.nan)
        return frame.assign(**columns)

    return codes(fit), codes(held)


def _score(model, X_fit, X_held, y_fit, y_held, task: Task) -> float:
    from sklearn.metrics import balanced_accuracy_score, r2_score

    model.fit(X_fit.astype("float64"), y_fit)
    predicted = model.predict(X_held.astype("float64"))
    with warnings.catch_warnings():  # a class of the fit sample missing from the held one
        warnings.simplefilter("ignore")
        if task == "classification":
            return float(balanced_accuracy_score(y_held, predicted))
        return float(r2_score(y_held, predicted))
