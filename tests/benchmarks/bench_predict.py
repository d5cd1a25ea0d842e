"""Benchmark: `mlops predict` on inputs far larger than a partition, and its peak memory.

Run: `.venv/bin/python tests/benchmarks/bench_predict.py [--rows 1000000 10000000]`.
In a fresh home with `mlops up`'s servers, `mlops train` registers a digits champion; then
for each size a Parquet file of digits rows (64 integer pixels, drawn with replacement) is
written row group by row group, and `mlops predict` scores it into a Parquet file as a whole
process: wall time, rows per second, and the process's peak RSS beside the raw data size.
Target: peak memory flat in the number of rows (bounded by MLOPS_PARTITION_ROWS).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import MIB, MLOPS, fresh_home, measure

ROWS_PER_GROUP = 500_000


def write_digits(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame.drop(columns="target").astype("int64")
    rng = np.random.default_rng(0)
    schema = pa.Schema.from_pandas(digits, preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROWS_PER_GROUP):
            drawn = rng.integers(0, len(digits), min(ROWS_PER_GROUP, rows - start))
            group = digits.iloc[drawn].reset_index(drop=True)
            writer.write_table(pa.Table.from_pandas(group, schema=schema, preserve_index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    results = []
    with fresh_home() as env:
        home = Path(env["MLOPS_HOME"])
        measure([MLOPS, "train", "--epochs", "10", "--json"], env)
        for rows in args.rows:
            source, output = home / f"batch-{rows}.parquet", home / f"scored-{rows}.parquet"
            write_digits(source, rows)
            run = measure(
                [MLOPS, "predict", "--data", str(source), "--output", str(output), "--json"], env
            )
            assert json.loads(run.last_line)["rows"] == rows
            results.append((rows, run))
            source.unlink(), output.unlink()
    partition = int(env.get("MLOPS_PARTITION_ROWS", 250_000))
    print(f"mlops predict, {partition:,} rows per partition, Parquet in and out:")
    print(f"{'rows':>12} {'raw data':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS':>10}")
    for rows, run in results:
        raw = rows * 64 * 8
        print(
            f"{rows:12,} {raw / MIB:7.0f} MiB {run.seconds:8.1f} {rows / run.seconds:9,.0f} "
            f"{run.peak_rss / MIB:6.0f} MiB"
        )


if __name__ == "__main__":
    main()
