"""Benchmark: the default job (`mlops train` on digits) against a plain Keras script that
trains the same network on the same rows, and `mlops --help`.

Run: `.venv/bin/python tests/benchmarks/bench_pipeline.py` (or `make bench`). Everything is
timed as whole processes, side by side in one run, in a fresh home with `mlops up`'s Prefect
server running (as the README advises, so no run pays Prefect's ephemeral start-up):
- the plain script, written by hand with Keras and scikit-learn alone: load digits, split
  as the flow does (stratified 20% test, then 20% validation), fit the same network (a
  Normalization layer, Dense(128, ReLU), softmax; Adam 3e-3; batch 64; 60 epochs, early
  stopping with patience 8) and score it;
- `mlops train --force`: the whole job (validation, drift, three candidates, plots,
  registration, champion re-scoring);
- `mlops train` again: an identical job, skipped;
- `mlops --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import plain_network

BIN = Path(sys.executable).parent
TARGET_RATIO = 1.5


def bare_training() -> None:
    """What an engineer writes by hand: the same network, data, split and stopping rule."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.astype("float32")
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=42
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=42
    )
    model = plain_network(X_train, y_train, X_val, y_val, 10, 60)
    accuracy = float(model.evaluate(X_test, y_test, verbose=0)[1])
    print(json.dumps({"test_accuracy": accuracy}))


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, (done.stdout.strip().splitlines() or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args().bare:
        bare_training()
        return
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MLOPS_HOME": home}
        env.pop("PREFECT_API_URL", None)
        env.pop("MLFLOW_TRACKING_URI", None)
        up = subprocess.Popen([str(BIN / "mlops"), "up"], env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while not (Path(home) / "up.json").exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            mlops = str(BIN / "mlops")
            timed([mlops, "train", "--json"], env)  # first run: creates the stores
            bare, bare_out = timed([sys.executable, __file__, "--bare"], env)
            forced, forced_out = timed([mlops, "train", "--force", "--json"], env)
            skipped, skipped_out = timed([mlops, "train", "--json"], env)
            helped, _ = timed([mlops, "--help"], env)
        finally:
            subprocess.run([str(BIN / "mlops"), "down"], env=env, capture_output=True, check=False)
            up.wait(timeout=30)
    assert json.loads(skipped_out)["skipped"] is True
    rows = [
        ("plain Keras script (same network, rows, early stopping)", bare),
        ("mlops train --force (whole job)", forced),
        ("mlops train, identical job (skipped)", skipped),
        ("mlops --help", helped),
    ]
    for what, seconds in rows:
        print(f"{what:58s} {seconds:7.2f} s")
    print(f"{'ratio: whole job / plain script':58s} {forced / bare:7.2f}x")
    print(f"{'ratio: repeated (skipped) job / plain script':58s} {skipped / bare:7.2f}x")
    verdict = "met" if forced / bare <= TARGET_RATIO else "MISSED"
    print(f"target: whole job at most {TARGET_RATIO:g}x the plain script: {verdict}")
    print(
        "accuracy: plain script",
        json.loads(bare_out)["test_accuracy"],
        "| job",
        json.loads(forced_out)["metrics"]["test_accuracy"],
    )


if __name__ == "__main__":
    main()
