"""Benchmark: the whole training job on 1M rows x 64 features against a bare Keras script.

Run: `.venv/bin/python tests/benchmarks/bench_scale.py [--rows 1000000] [--epochs 4]`.
In a fresh home with `mlops up`'s servers: a generated Parquet file (float32 features, ten
classes that depend on them) and its suggested suite; then, each as a whole process timed
with its peak RSS, side by side:
- the frameworks' imports alone (keras, MLflow, Great Expectations, Prefect, scikit-learn):
  the baseline memory any job pays;
- the bare script: read the file, split as the flow does, fit the same network for the same
  epochs, score the test rows;
- the same training by hand: the bare script's network, then the job's two baselines on the
  same 20k-row sample, one after another, each scored on the test rows (the metrics the job
  logs), the best picked: what the job trains and evaluates, without the platform;
- `mlops train` on the file: validation, snapshot, drift profile, the network and the two
  baselines (on a 20k-row sample, MLOPS_BASELINE_ROWS), evaluation, registration;
- the same job again, forced, as a scheduled retraining runs it: now also checking drift
  against the champion's profile and re-scoring the champion on the test rows.
Targets: job / bare time <= 1.1x; job peak RSS <= imports + 2.5 x the raw data. The job's
time is also given against the same training by hand: the platform's cost over the work it
orchestrates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import IMPORTS, MIB, MLOPS, fresh_home, measure, write_classes


def bare(path: str, epochs: int, baselines: bool) -> None:
    """What an engineer writes by hand for the network (and, with ``baselines``, for the
    job's three candidates)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import pandas as pd

    from tasks.data.splits import split_frame
    from tasks.evaluation.scoring import best_candidate, score_probabilities
    from tasks.models.baselines import BASELINES, build_baseline
    from tasks.models.network import KerasMLPClassifier
    from tasks.models.training import KERAS_FAMILY, fit_candidate
    from tasks.platform.settings import Settings

    splits = split_frame(pd.read_parquet(path), "target", 0.2, 0.2, 42)
    model = KerasMLPClassifier(epochs=epochs, random_state=42).fit(
        splits.X_train, splits.y_train, validation_data=(splits.X_val, splits.y_val)
    )
    if not baselines:
        accuracy = float((model.predict(splits.X_test) == splits.y_test.to_numpy()).mean())
        return print(json.dumps({"test_accuracy": accuracy}))
    probabilities = model.predict_proba(splits.X_test)
    scores = {KERAS_FAMILY: score_probabilities(splits.y_test, probabilities, model.classes_)}
    sample = Settings.model_fields["baseline_rows"].default
    for family in BASELINES["classification"]:
        fitted = fit_candidate(
            build_baseline(family, 42), splits.X_train, splits.y_train, None, None, sample, 42
        )
        probabilities = fitted.predict_proba(splits.X_test)
        scores[family] = score_probabilities(splits.y_test, probabilities, fitted.classes_)
    best = best_candidate(scores, "test_accuracy")
    print(json.dumps({"test_accuracy": scores[best]["test_accuracy"], "family": best}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--baselines", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare(args.bare, args.epochs, args.baselines)
    me = [sys.executable, __file__, "--epochs", str(args.epochs)]
    with fresh_home() as env:
        home = Path(env["MLOPS_HOME"])
        data, suite = home / "scale.parquet", home / "scale.json"
        write_classes(data, args.rows, 64)
        suggest = ["suite", "suggest", "--data", str(data), "--name", "scale", "--out", str(suite)]
        measure([MLOPS, *suggest], env)
        baseline = measure(IMPORTS, env)
        hand = measure([*me, "--bare", str(data)], env)
        by_hand = measure([*me, "--bare", str(data), "--baselines"], env)
        train = ["train", "--data", str(data), "--suite", str(suite), "--model-name", "scale"]
        job = measure([MLOPS, *train, "--epochs", str(args.epochs), "--json"], env)
        again = measure([MLOPS, *train, "--epochs", str(args.epochs), "--json", "--force"], env)
    raw = args.rows * 64 * 4
    result = json.loads(job.last_line)
    print(
        f"{args.rows:,} rows x 64 float32 features ({raw / MIB:.0f} MiB raw), {args.epochs} epochs"
    )
    rows = [
        ("imports alone", baseline),
        ("bare Keras script", hand),
        ("the same training by hand", by_hand),
        ("mlops train", job),
        ("the same job, with a champion", again),
    ]
    for what, run in rows:
        print(f"  {what:31s} {run.seconds:7.1f} s   peak RSS {run.peak_rss / MIB:6.0f} MiB")
    for what, run in (("job", job), ("job with a champion", again)):
        over = (run.peak_rss - baseline.peak_rss) / raw
        print(
            f"  {what:20s} time {run.seconds / hand.seconds:5.2f}x the bare script's "
            f"({run.seconds / by_hand.seconds:4.2f}x the same training by hand's), "
            f"memory over imports {over:5.2f}x the raw data"
        )
    print(
        f"  test accuracy: bare {json.loads(hand.last_line)['test_accuracy']:.4f}, "
        f"job {result['metrics']['test_accuracy']:.4f} ({result['family']})"
    )


if __name__ == "__main__":
    main()
