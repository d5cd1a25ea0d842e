"""Benchmark: `mlops feedback` on a large recorded batch: its time and peak memory.

Run: `.venv/bin/python tests/benchmarks/bench_feedback.py [--rows 1000000]`.
In a fresh home with `mlops up`'s servers, `mlops train` registers a digits champion; a
Parquet batch of digits rows (drawn with replacement, keyed by `order_id`) is scored by
`mlops predict --id-column order_id`, which records it; then its true labels are fed back with
`mlops feedback`: wall time and the process's peak RSS of each, beside the labels' raw size.
Target: feedback's memory bounded by the batch's partitions, not its rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import MIB, MLOPS, fresh_home, measure

ROWS_PER_GROUP = 500_000


def write_batch(batch: Path, labels: Path, rows: int) -> None:
    """The batch (features and its key) and, apart, its labels (the key and the target)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame.astype("int64")
    rng = np.random.default_rng(0)
    writers = {}
    try:
        for start in range(0, rows, ROWS_PER_GROUP):
            drawn = rng.integers(0, len(digits), min(ROWS_PER_GROUP, rows - start))
            group = digits.iloc[drawn].reset_index(drop=True)
            group.insert(0, "order_id", np.arange(start, start + len(group)))
            for path, part in (
                (batch, group.drop(columns="target")),
                (labels, group[["order_id", "target"]]),
            ):
                table = pa.Table.from_pandas(part, preserve_index=False)
                if path not in writers:
                    writers[path] = pq.ParquetWriter(path, table.schema)
                writers[path].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with fresh_home() as env:
        home = Path(env["MLOPS_HOME"])
        measure([MLOPS, "train", "--epochs", "10", "--json"], env)
        batch, labels, scored = (home / f"{n}.parquet" for n in ("batch", "labels", "scored"))
        write_batch(batch, labels, args.rows)
        predicted = measure(
            [MLOPS, "predict", "--data", str(batch), "--output", str(scored),
             "--id-column", "order_id", "--json"],
            env,
        )  # fmt: skip
        fed = measure(
            [MLOPS, "feedback", "--model", "digits", "--data", str(labels),
             "--id-column", "order_id", "--json"],
            env,
        )  # fmt: skip
    result = json.loads(fed.last_line)
    assert result["matched"] == args.rows, result
    raw = args.rows * 2 * 8
    accuracy = result["metrics"]["accuracy"]
    print(f"{args.rows:,} rows; labels {raw / MIB:.0f} MiB raw; production accuracy {accuracy:.4f}")
    print(f"{'command':>10} {'seconds':>8} {'peak RSS':>10}")
    for name, run in (("predict", predicted), ("feedback", fed)):
        print(f"{name:>10} {run.seconds:8.1f} {run.peak_rss / MIB:6.0f} MiB")


if __name__ == "__main__":
    main()
