"""Benchmark: the whole training job on a mixed-type table (1M rows, 40 numeric and 10 text
categorical columns, 5% of every column missing) against the same training written by hand.

Run: `.venv/bin/python tests/benchmarks/bench_mixed.py [--rows 1000000] [--epochs 4]`.
In a fresh home with `mlops up`'s servers: a generated Parquet file and its suggested suite
(feature types included); then, each as a whole process timed with its peak RSS:
- the frameworks' imports alone: the baseline memory any job pays;
- the same training by hand, with Keras and scikit-learn alone: read the file, split as the
  flow does (stratified 20% test, then 20% validation), the same preprocessing (median
  imputation with missing-indicators and one-hot categories for the network and logistic
  regression; ordinal codes and native categorical splits for gradient boosting), the same
  network for the same epochs, both baselines on a 20k-row sample, each scored on the test
  rows, the best picked;
- `mlops train` on the file: validation, snapshot, types, drift profile, the three candidates,
  evaluation, plots, registration.
Targets: job time at most 1.1x the hand-written training's; job peak RSS at most the
imports plus 2.5x the raw data (the in-memory size of the table pandas reads).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import IMPORTS, MIB, MLOPS, fresh_home, measure, plain_network

NUMERIC, CATEGORICAL, MISSING = 40, 10, 0.05


def write_table(path: Path, rows: int, rows_per_group: int = 100_000) -> None:
    """Numbers and text categories, each 5% missing, and four classes that depend on both,
    written row group by row group."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(NUMERIC, 4))
    levels = [rng.normal(size=(6 + 2 * j, 4)) for j in range(CATEGORICAL)]
    with pq.ParquetWriter(path, _schema(pa)) as writer:
        for start in range(0, rows, rows_per_group):
            n = min(rows_per_group, rows - start)
            X = rng.normal(size=(n, NUMERIC))
            codes = [rng.integers(0, len(level), n) for level in levels]
            score = X @ weights + sum(level[c] for level, c in zip(levels, codes, strict=True))
            columns = {}
            for i in range(NUMERIC):
                values = X[:, i].astype("float32")
                values[rng.random(n) < MISSING] = np.nan
                columns[f"x{i}"] = values
            for j, c in enumerate(codes):
                text = np.array([f"c{j}_{k}" for k in range(len(levels[j]))], dtype=object)[c]
                text[rng.random(n) < MISSING] = None
                columns[f"c{j}"] = text
            columns["target"] = np.argmax(score, axis=1)
            writer.write_table(pa.table(columns, schema=_schema(pa)))


def _schema(pa):
    fields = [pa.field(f"x{i}", pa.float32()) for i in range(NUMERIC)]
    fields += [pa.field(f"c{j}", pa.string()) for j in range(CATEGORICAL)]
    return pa.schema([*fields, ("target", pa.int64())])


def by_hand(path: str, epochs: int) -> None:
    """What an engineer writes by hand for the job's three candidates on this table."""
    import numpy as np
    import pandas as pd
    from sklearn import metrics
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    frame = pd.read_parquet(path)
    numeric = [f"x{i}" for i in range(NUMERIC)]
    categorical = [f"c{j}" for j in range(CATEGORICAL)]
    X, y = frame[numeric + categorical], frame["target"].to_numpy()
    rest, test = train_test_split(np.arange(len(X)), test_size=0.2, stratify=y, random_state=42)
    train, val = train_test_split(rest, test_size=0.2, stratify=y[rest], random_state=42)

    def one_hot():
        return ColumnTransformer(
            [
                ("n", SimpleImputer(strategy="median", add_indicator=True), numeric),
                (
                    "c",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=64,
                        sparse_output=False,
                        dtype=np.float32,
                    ),
                    categorical,
                ),
            ],
            sparse_threshold=0,
        )

    encoder = one_hot().fit(X.iloc[train])
    X_train = encoder.transform(X.iloc[train]).astype("float32")
    X_val = encoder.transform(X.iloc[val]).astype("float32")
    X_test = encoder.transform(X.iloc[test]).astype("float32")
    model = plain_network(X_train, y[train], X_val, y[val], 4, epochs)
    scores = {"keras_mlp": model.predict(X_test, batch_size=4096, verbose=0)}
    sample = np.random.default_rng(42).choice(train, 20_000, replace=False)
    ordinal = ColumnTransformer(
        [
            ("n", "passthrough", numeric),
            (
                "c",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                categorical,
            ),
        ]
    )
    baselines = {
        "logistic_regression": make_pipeline(
            one_hot(), StandardScaler(), LogisticRegression(max_iter=2000)
        ),
        "gradient_boosting": make_pipeline(
            ordinal,
            HistGradientBoostingClassifier(
                max_iter=50,
                learning_rate=0.3,
                categorical_features=[False] * NUMERIC + [True] * CATEGORICAL,
                random_state=42,
            ),
        ),
    }
    for family, estimator in baselines.items():
        estimator.fit(X.iloc[sample], y[sample])
        scores[family] = estimator.predict_proba(X.iloc[test])
    accuracy = {
        family: float(metrics.accuracy_score(y[test], p.argmax(axis=1)))
        for family, p in scores.items()
    }
    for probabilities in scores.values():  # the job's other metrics, as it logs them
        metrics.roc_auc_score(y[test], probabilities, multi_class="ovr")
        metrics.f1_score(y[test], probabilities.argmax(axis=1), average="macro")
    best = max(accuracy, key=accuracy.get)
    print(json.dumps({"test_accuracy": accuracy[best], "family": best}))


def raw_size(path: Path) -> int:
    """The bytes of the table as pandas holds it: what a user would call its size."""
    import pandas as pd

    return int(pd.read_parquet(path).memory_usage(deep=True).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--by-hand", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.by_hand:
        return by_hand(args.by_hand, args.epochs)
    me = [sys.executable, __file__, "--epochs", str(args.epochs)]
    with fresh_home() as env:
        home = Path(env["MLOPS_HOME"])
        data, suite = home / "mixed.parquet", home / "mixed.json"
        write_table(data, args.rows)
        raw = raw_size(data)
        suggest = ["suite", "suggest", "--data", str(data), "--name", "mixed", "--out", str(suite)]
        measure([MLOPS, *suggest], env)
        baseline = measure(IMPORTS, env)
        hand = measure([*me, "--by-hand", str(data)], env)
        train = ["train", "--data", str(data), "--suite", str(suite), "--model-name", "mixed"]
        job = measure([MLOPS, *train, "--epochs", str(args.epochs), "--json"], env)
    result = json.loads(job.last_line)
    print(
        f"{args.rows:,} rows x {NUMERIC} numeric + {CATEGORICAL} categorical columns, "
        f"{MISSING:.0%} missing ({raw / MIB:.0f} MiB in pandas), {args.epochs} epochs"
    )
    for what, run in (("imports alone", baseline), ("by hand", hand), ("mlops train", job)):
        print(f"  {what:15s} {run.seconds:7.1f} s   peak RSS {run.peak_rss / MIB:6.0f} MiB")
    over = (job.peak_rss - baseline.peak_rss) / raw
    print(
        f"  job time {job.seconds / hand.seconds:4.2f}x by hand's (target 1.1x); "
        f"memory over imports {over:4.2f}x the raw data (target 2.5x)"
    )
    print(
        f"  test accuracy: by hand {json.loads(hand.last_line)['test_accuracy']:.4f} "
        f"({json.loads(hand.last_line)['family']}), job {result['metrics']['test_accuracy']:.4f} "
        f"({result['family']})"
    )


if __name__ == "__main__":
    main()
