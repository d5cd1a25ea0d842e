"""Benchmark: `mlops validate` on 1M digits-shaped rows against a bare pandas check of the rules.

Run: `make bench` (or `.venv/bin/python tests/benchmarks/bench_validation.py [--rows N]`).
Both sides are timed as whole processes (imports, reading the Parquet file, checking), side by
side in one run, median of three. Target: `mlops validate` at most 8 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = Path(__file__).resolve().parents[2] / "expectations" / "digits.json"
TARGET_SECONDS = 8.0


def bare_check(path: str) -> None:
    """The digits suite's rules written by hand in pandas: the floor any validator is held to."""
    import pandas as pd

    suite = json.loads(SUITE.read_text())
    frame = pd.read_parquet(path)
    columns = next(e for e in suite["expectations"] if e["type"].startswith("expect_table_columns"))
    features = [c for c in columns["kwargs"]["column_set"] if c != "target"]
    ok = set(frame.columns) == set(columns["kwargs"]["column_set"]) and len(frame) >= 500
    ok &= not frame.isna().any().any()
    ok &= all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns)
    values = frame[features]
    ok &= bool((values.min() >= 0).all() and (values.max() <= 16).all())
    labels = set(frame["target"].unique())
    ok &= labels == set(range(10))
    print(json.dumps({"success": bool(ok)}))


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_check(args.bare)
        return

    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame
    rows = np.random.default_rng(0).integers(0, len(digits), args.rows)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "digits_1m.parquet"
        digits.iloc[rows].reset_index(drop=True).to_parquet(path, index=False)
        mlops = str(Path(sys.executable).with_name("mlops"))
        sides = {
            "mlops validate (Great Expectations)": [
                mlops,
                "validate",
                "--data",
                str(path),
                "--json",
            ],
            "bare pandas check": [sys.executable, __file__, "--bare", str(path)],
        }
        results = {}
        for _ in range(args.repeat):
            for name, command in sides.items():
                seconds, last = timed(command)
                assert json.loads(last)["success"], f"{name} rejected good data"
                results.setdefault(name, []).append(seconds)
    medians = {name: statistics.median(times) for name, times in results.items()}
    mlops_s, bare_s = medians.values()
    print(f"{args.rows:,} rows x 65 columns, median of {args.repeat}, whole processes:")
    for name, seconds in medians.items():
        print(f"  {name:<38} {seconds:6.2f} s")
    print(f"  ratio                                  {mlops_s / bare_s:6.2f} x")
    verdict = "met" if mlops_s <= TARGET_SECONDS else "MISSED"
    print(f"  target: mlops validate <= {TARGET_SECONDS:g} s: {verdict}")


if __name__ == "__main__":
    main()
