"""Benchmark: one epoch of `KerasMLPClassifier.fit_parquet` on a Parquet file, and its peak memory.

Run: `.venv/bin/python tests/benchmarks/bench_streaming.py [--rows N] [--features F]`.
Writes a generated file (float32 features, ten classes that depend on them) row group by row
group, so writing holds one group too, then trains one epoch streaming in a fresh process and
reports file size, wall time and that process's peak RSS beside the size of the raw data.
Target: what training adds to the imports' RSS stays well under the raw data size, and flat
as --rows grows (bounded memory).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import MIB, write_classes


def train(path: str) -> None:
    """One streamed epoch in this process; prints its wall time and peak RSS as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import keras

    from tasks.models.network import KerasMLPClassifier

    keras.ops.ones(1)  # the backend's runtime up, so the baseline holds it
    baseline = _peak_rss()
    start = time.perf_counter()
    model = KerasMLPClassifier(epochs=1, batch_size=1024).fit_parquet(path, "target")
    seconds = time.perf_counter() - start
    accuracy = model.history_["val_accuracy"][-1]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "baseline": baseline,
                "peak_rss": _peak_rss(),
                "val_accuracy": accuracy,
            }
        )
    )


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train(args.train)
        return

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "stream.parquet"
        write_classes(path, args.rows, args.features)
        done = subprocess.run(
            [sys.executable, __file__, "--train", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        file_size = path.stat().st_size
    raw = args.rows * (args.features * 4 + 8)
    print(f"{args.rows:,} rows x {args.features} float32 features, one epoch streamed:")
    print(f"  raw data                {raw / MIB:9.1f} MiB")
    print(f"  Parquet file            {file_size / MIB:9.1f} MiB")
    print(f"  wall time               {result['seconds']:9.1f} s")
    grown = result["peak_rss"] - result["baseline"]
    print(f"  peak RSS                {result['peak_rss'] / MIB:9.1f} MiB")
    print(f"    of which imports      {result['baseline'] / MIB:9.1f} MiB")
    print(f"    of which training     {grown / MIB:9.1f} MiB ({grown / raw:.2f} x raw data)")
    print(f"  val_accuracy            {result['val_accuracy']:9.3f}")


if __name__ == "__main__":
    main()
