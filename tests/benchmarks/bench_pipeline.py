"""Benchmark: the default job (`mlops train` on digits, every extra on) against a plain Keras
script that trains the same network on the same rows; where the job's time goes, step by step.

Run: `.venv/bin/python tests/benchmarks/bench_pipeline.py [--rounds N]` (or `make bench`).
Everything is timed as whole processes, in a fresh home with `mlops up`'s Prefect server
running (as the README advises), the two sides alternating N times (default 3):
- the plain script, written by hand with Keras and scikit-learn alone: load digits, split
  as the flow does (stratified 20% test, then 20% validation), fit the same network (a
  Normalization layer, Dense(128, ReLU), softmax; Adam 3e-3; batch 64; 60 epochs, early
  stopping with patience 8) and score it;
- `mlops train --force`: the whole job (validation, drift, the candidates, evidence,
  explanation, plots, compression, serve check, registration, champion re-scoring);
then once each: `mlops train --force` on the command's own (ephemeral) Prefect API, an
identical job (skipped), and `mlops --help`. Last, the step table of the final forced run
from the Prefect API (each step's start, offset from the flow's start, and seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from harness import MLOPS, fresh_home, measure, plain_network

TARGET_RATIO = 1.5
TARGET_OWN_API = 2.0


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


def step_table(env: dict[str, str]) -> list[tuple[str, float, float]]:
    """(step, seconds after the flow run's start, seconds) for each task run of the newest
    flow run."""
    import asyncio
    import os

    up = json.loads((Path(env["MLOPS_HOME"]) / "up.json").read_text())
    os.environ["PREFECT_API_URL"] = up["prefect_api_url"]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    async def read():
        async with get_client() as client:
            [flow_run] = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
            ids = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            return flow_run, await client.read_task_runs(flow_run_filter=ids)

    flow_run, task_runs = asyncio.run(read())
    rows = [
        (
            run.name.rsplit("-", 1)[0],
            (run.start_time - flow_run.start_time).total_seconds(),
            (run.end_time - run.start_time).total_seconds(),
        )
        for run in task_runs
        if run.start_time and run.end_time
    ]
    whole = (flow_run.end_time - flow_run.start_time).total_seconds()
    return [*sorted(rows, key=lambda row: row[1]), ("(the whole flow run)", 0.0, whole)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two sides")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.bare:
        bare_training()
        return
    train = [MLOPS, "train", "--json"]
    with fresh_home() as env:
        measure(train, env)  # the first run creates the stores
        bares, forceds = [], []
        for _ in range(arguments.rounds):
            bares.append(measure([sys.executable, __file__, "--bare"], env))
            forceds.append(measure([*train, "--force"], env))
        steps = step_table(env)  # of the last forced run
        skipped = measure(train, env)
        helped = measure([MLOPS, "--help"], env)
    with tempfile.TemporaryDirectory() as own_home:  # no `mlops up`: each command its own API
        own_env = {**env, "MLOPS_HOME": own_home}
        measure(train, own_env)
        own = measure([*train, "--force"], own_env)
    bare = statistics.median(m.seconds for m in bares)
    forced = statistics.median(m.seconds for m in forceds)
    assert json.loads(skipped.last_line)["skipped"] is True
    rows = [
        ("plain Keras script (median)", bare),
        ("mlops train --force, Prefect server up (median)", forced),
        ("mlops train --force, the command's own Prefect API", own.seconds),
        ("mlops train, identical job (skipped)", skipped.seconds),
        ("mlops --help", helped.seconds),
    ]
    for what, seconds in rows:
        print(f"{what:58s} {seconds:7.2f} s")
    pairs = zip(bares, forceds, strict=True)
    print("rounds (plain / job):", ", ".join(f"{b.seconds:.2f}/{f.seconds:.2f}" for b, f in pairs))
    ratio, own_ratio = forced / bare, own.seconds / bare
    for label, value, target in (
        ("server up", ratio, TARGET_RATIO),
        ("own API", own_ratio, TARGET_OWN_API),
    ):
        verdict = "met" if value <= target else "MISSED"
        print(f"ratio, {label}: {value:.2f}x (target at most {target:g}x: {verdict})")
    print(
        "accuracy: plain script",
        json.loads(bares[-1].last_line)["test_accuracy"],
        "| job",
        json.loads(forceds[-1].last_line)["metrics"]["test_accuracy"],
    )
    print("\n| step | starts at (s) | seconds |\n|---|---|---|")
    for name, start, seconds in steps:
        print(f"| {name} | {start:.1f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
