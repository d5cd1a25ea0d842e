"""Benchmark: the compact files `mlops export` writes, against the models as trained, on digits.

Run: `.venv/bin/python tests/benchmarks/bench_export.py [--epochs 60] [--rows 100000]`.
Splits digits as the job does (60/20/20, stratified, seed 42), fits the network and the
scikit-learn baselines, and makes the network's int8 TFLite variant and the best baseline's
ONNX file as the training flow does (tasks/evaluation/compression.py, which also times the
step). Then, on this CPU: each file's size, its test accuracy, and its latency per 1,000 rows,
on the 360 test rows in one call (what a version's tags record) and on a batch of ``--rows``
digits rows drawn with replacement.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tasks.data.sources import load_frame
from tasks.data.splits import split_frame
from tasks.evaluation import compression, scoring
from tasks.models import training


def file_runner(path: Path):
    """The file's predictions of float32 rows, in its own runtime."""
    return (compression.tflite_runner if path.suffix == ".tflite" else compression.onnx_runner)(
        path
    )


def trained_runner(estimator):
    """The model as trained: the Keras network's predict, or scikit-learn's predict_proba."""
    if hasattr(estimator, "model_"):
        return lambda rows: estimator.model_.predict(rows, batch_size=4096, verbose=0)
    return estimator.predict_proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    frame = load_frame("builtin:digits")
    frame = frame.loc[:, frame.nunique() > 1]  # the job leaves out digits' blank pixels
    splits = split_frame(frame, "target", 0.2, 0.2, 42, "classification")
    X_test, y_test = splits.X_test, splits.y_test
    batch = X_test.sample(args.rows, replace=True, random_state=0)
    fitted, scores = {}, {}
    for entry in training.candidates("classification", len(splits.X_train)):
        family = entry.family
        estimator = training.build_candidate(family, args.epochs, 42)
        fitted[family] = training.fit_candidate(
            estimator, splits.X_train, splits.y_train, splits.X_val, splits.y_val
        )
        scores[family] = scoring.test_scores(fitted[family], X_test, y_test)[0]
    baselines = [f for f in fitted if f != training.KERAS_FAMILY]
    best = scoring.best_candidate({f: scores[f] for f in baselines}, "test_accuracy")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for family in (training.KERAS_FAMILY, best):
            folder = Path(scratch) / family
            folder.mkdir()
            estimator = fitted[family]
            start = time.perf_counter()
            found, kept = compression.compress(
                family, estimator, X_test, y_test, "test_accuracy",
                scores[family]["test_accuracy"], 0.01, False, folder,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            if kept is None:
                print(f"{family}: {found.reason}")
                continue
            rows_of = batch.to_numpy("float32")
            batch_file = compression.latency_ms_per_1k(file_runner(kept), rows_of)
            batch_float = compression.latency_ms_per_1k(trained_runner(estimator), rows_of)
            rows.append((family, "as trained", found.float_size_bytes, found.float_score,
                         found.float_latency_ms_per_1k, batch_float, None))  # fmt: skip
            rows.append((family, found.format, found.size_bytes, found.score,
                         found.latency_ms_per_1k, batch_file, seconds))  # fmt: skip
    print(f"digits, {len(X_test)} test rows; batch of {args.rows:,} rows; ms per 1,000 rows")
    print(
        f"{'family':<20}{'file':<12}{'bytes':>10}{'accuracy':>10}{'test rows':>11}"
        f"{'batch':>9}{'step s':>8}"
    )
    for family, kind, size, accuracy, test_ms, batch_ms, seconds in rows:
        step = f"{seconds:8.2f}" if seconds is not None else f"{'':>8}"
        print(
            f"{family:<20}{kind:<12}{size:>10,}{accuracy:>10.4f}{test_ms:>11.3g}"
            f"{batch_ms:>9.3g}{step}"
        )


if __name__ == "__main__":
    main()
