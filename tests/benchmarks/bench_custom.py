"""Benchmark: a user's Keras candidate fitted through the platform, against the same model
fitted by hand with Keras alone.

Run: `.venv/bin/python tests/benchmarks/bench_custom.py [--entry FILE.py:FUNCTION]
[--epochs 100] [--repeat 3]`. Default entry: the example CNN, docs/examples/digits_cnn.py:build.
Both sides fit on builtin:digits' rows as the training flow has them (the suite's feature
types, its split: 60/20/20 stratified, seed 42), in this one process, alternating (ABBA).
The platform's side is `tasks.models.training.fit_users_candidate` as the flow calls it: the
user's function called, its model compiled (Adam 1e-3, cross-entropy), fitted on the
flow's input pipeline with early stopping (patience 8) and a backup every epoch to a
checkpoint folder, its outputs checked. The hand side builds the same model from the same
function, compiles it the same way and fits it with `model.fit` for as many epochs as the
platform's fit ran (its `n_epochs_`: early stopping cannot be switched off, so the same
number of epochs is compared), batch 64, the same validation rows. Each side's time covers
building, compiling and fitting; the ratio is of the medians of seconds per epoch (the
epochs run agree from one fit to the next, seeded alike). Target: the platform at most 1.3x
the hand fit. The 2-core machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.3
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "digits_cnn.py"


def digits_splits(settings):
    """digits' train, validation and test rows as the training flow makes them (feature
    types from the suite, else inferred; the model's columns; the seeded stratified split),
    with the job's inputs."""
    from tasks.data import features
    from tasks.data.sources import load_frame
    from tasks.data.splits import split_frame
    from tasks.models import preprocessing
    from tasks.quality.validation import resolve_suite, suite_contract

    frame = load_frame("builtin:digits")
    suite = resolve_suite("digits", settings.suites_dir)
    task, types = features.resolve_types(frame, "target", suite_contract(suite), "auto", [])
    inputs = features.ModelInputs(task, types, preprocessing.needs_encoding(types, frame))
    frame = preprocessing.model_frame(frame, "target", inputs)
    splits = split_frame(
        frame, "target", settings.test_size, settings.validation_size, settings.seed, task
    )
    return splits, inputs


def through_platform(entry, splits, inputs, epochs: int, seed: int):
    """Seconds of `fit_users_candidate`, the fitted estimator."""
    from tasks.models.training import fit_users_candidate

    with tempfile.TemporaryDirectory() as checkpoints:
        start = time.perf_counter()
        fitted = fit_users_candidate(
            entry, splits.X_train, splits.y_train, splits.X_val, splits.y_val, epochs, seed,
            checkpoints, inputs.task, inputs.encoding,
        )  # fmt: skip
        return time.perf_counter() - start, fitted


def by_hand(entry, splits, epochs: int, seed: int):
    """Seconds of the same model built, compiled and fitted with Keras alone for ``epochs``,
    its test accuracy."""
    import keras
    import numpy as np

    from tasks.models import custom

    classes = sorted(splits.y_train.unique())
    names = [str(c) for c in splits.X_train.columns]
    spec = custom.CandidateSpec("classification", classes, len(names), names, seed, entry.params)
    function = custom.load_function(entry)
    X_train, X_val = (s.to_numpy("float32") for s in (splits.X_train, splits.X_val))
    y_train, y_val = (np.searchsorted(classes, s) for s in (splits.y_train, splits.y_val))
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = function(spec)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        X_train, y_train, validation_data=(X_val, y_val), epochs=epochs, batch_size=64, verbose=0
    )
    seconds = time.perf_counter() - start
    outputs = model.predict(splits.X_test.to_numpy("float32"), batch_size=4096, verbose=0)
    accuracy = float(np.mean(np.asarray(classes)[outputs.argmax(axis=1)] == splits.y_test))
    return seconds, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entry", default=f"{EXAMPLE}:build")
    parser.add_argument("--epochs", type=int, default=100, help="most epochs of the platform")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # each new model's retracing
    with tempfile.TemporaryDirectory(prefix="bench-custom-") as home:
        os.environ["MLOPS_HOME"] = home  # the flow's process settings, a home of its own
        compare(args)


def compare(args) -> None:
    from tasks.platform.settings import load_settings

    settings = load_settings()
    from tasks.evaluation import scoring
    from tasks.models.custom import CandidateEntry, with_file_from

    entry = with_file_from(CandidateEntry(entry=args.entry), Path.cwd())
    splits, inputs = digits_splits(settings)
    seed = settings.seed
    by_hand(entry, splits, 1, seed)  # the process's one-time start of Keras, on neither side
    platform, hand, rows, epochs = [], [], [], None
    for attempt in range(args.repeat):  # P H, H P, P H, ...: the hand side needs an epoch count
        for side in ("platform", "hand") if attempt % 2 == 0 else ("hand", "platform"):
            if side == "platform":
                seconds, fitted = through_platform(entry, splits, inputs, args.epochs, seed)
                epochs = fitted.n_epochs_
                accuracy = scoring.test_scores(fitted, splits.X_test, splits.y_test)[0]
                platform.append(seconds / epochs)
                rows.append(("platform", epochs, seconds, accuracy["test_accuracy"]))
            else:
                seconds, accuracy = by_hand(entry, splits, epochs, seed)
                hand.append(seconds / epochs)
                rows.append(("by hand", epochs, seconds, accuracy))
            print(f"{rows[-1][0]:<10}{rows[-1][1]:>7}{rows[-1][2]:>10.2f}", flush=True)
    print(f"\n{entry.entry} on digits ({len(splits.X_train)} training rows), batch 64")
    print(f"{'side':<10}{'epochs':>7}{'seconds':>10}{'s/epoch':>9}{'accuracy':>10}")
    for side, epochs, seconds, accuracy in rows:
        print(f"{side:<10}{epochs:>7}{seconds:>10.2f}{seconds / epochs:>9.3f}{accuracy:>10.4f}")
    ratio = statistics.median(platform) / statistics.median(hand)
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"median seconds per epoch: platform {statistics.median(platform):.3f}, by hand "
        f"{statistics.median(hand):.3f}; ratio {ratio:.2f}x (target {TARGET_RATIO}x: {verdict})"
    )


if __name__ == "__main__":
    main()
