"""Benchmark: the default job (`mlops train` on digits) against a bare Keras script that
trains the same network on the same rows, and `mlops --help`.

Run: `.venv/bin/python tests/benchmarks/bench_pipeline.py` (or `make bench`). Everything is
timed as whole processes, side by side in one run, in a fresh home with `mlops up`'s Prefect
server running (as the README advises, so no run pays Prefect's ephemeral start-up):
- the bare script: load digits, split as the flow does, fit the network with early stopping;
- `mlops train --force`: the whole job (validation, drift, three candidates, plots,
  registration, champion re-scoring), in the warm runner `mlops up` started (flows/warm.py);
- `mlops train` again: an identical job, skipped;
- `mlops train --force` in its own process (`MLOPS_WARM_RUNNER=false`), for comparison;
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

BIN = Path(sys.executable).parent
TARGET_RATIO = 1.5


def bare_training() -> None:
    """What an engineer writes by hand: the same network, data, split and stopping rule."""
    from tasks.data import load_frame, split_frame
    from tasks.training import KerasMLPClassifier

    splits = split_frame(load_frame("builtin:digits"), "target", 0.2, 0.2, 42)
    model = KerasMLPClassifier(epochs=60, random_state=42).fit(
        splits.X_train, splits.y_train, validation_data=(splits.X_val, splits.y_val)
    )
    accuracy = float((model.predict(splits.X_test) == splits.y_test.to_numpy()).mean())
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
            own_env = {**env, "MLOPS_WARM_RUNNER": "false"}
            own, _ = timed([mlops, "train", "--force", "--json"], own_env)
            helped, _ = timed([mlops, "--help"], env)
            jobs = (Path(home) / "logs" / "runner.log").read_text().count(": mlops train\n")
        finally:
            subprocess.run([str(BIN / "mlops"), "down"], env=env, capture_output=True, check=False)
            up.wait(timeout=30)
    assert json.loads(skipped_out)["skipped"] is True
    assert jobs == 3, f"{jobs} of the 3 warm `mlops train` ran in the warm runner"
    rows = [
        ("bare Keras script (same network, rows, early stopping)", bare),
        ("mlops train --force (whole job, in the warm runner)", forced),
        ("mlops train, identical job (skipped, in the warm runner)", skipped),
        ("mlops train --force in its own process (no warm runner)", own),
        ("mlops --help", helped),
    ]
    for what, seconds in rows:
        print(f"{what:58s} {seconds:7.2f} s")
    print(f"{'ratio: whole job / bare script':58s} {forced / bare:7.2f}x")
    print(f"{'ratio: repeated (skipped) job / bare script':58s} {skipped / bare:7.2f}x")
    print(f"{'ratio: whole job in its own process / bare script':58s} {own / bare:7.2f}x")
    verdict = "met" if forced / bare <= TARGET_RATIO else "MISSED"
    print(f"target: whole job at most {TARGET_RATIO:g}x the bare script: {verdict}")
    print(
        "accuracy: bare",
        json.loads(bare_out)["test_accuracy"],
        "| job",
        json.loads(forced_out)["metrics"]["test_accuracy"],
    )


if __name__ == "__main__":
    main()
