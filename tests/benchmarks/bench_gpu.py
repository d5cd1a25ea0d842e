"""Benchmark: samples per second of the platform's Keras network, on the device it finds.

Run here: `.venv/bin/python tests/benchmarks/bench_gpu.py` (TensorFlow on the CPU). Run on a
GPU machine with the JAX backend (the README's "GPU check" says how to carry Keras there):
`KERAS_BACKEND=jax python3 tests/benchmarks/bench_gpu.py --json $OUT/gpu.json`.
It builds the reference network with `tasks.models.architecture.build_network` under the strategy
`detect_device` chooses: mixed float16 on one GPU, replicas on several, float32 on a CPU),
fits it on generated rows (float32 features, ten classes that depend on them) for one epoch
to compile, then times `--epochs` more of the same compiled model at each `--batch` size;
while it does, a thread samples the GPU's utilization and memory through NVML (nvidia-ml-py)
every 50 ms. Nothing is downloaded; no Prefect, MLflow or TensorFlow is needed on a JAX
machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class GpuSampler:
    """Utilization (%) and memory (MiB) of GPU 0, sampled on a thread until stopped."""

    def __init__(self, period: float = 0.05):
        self.period, self.samples, self.stop = period, [], threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
            self.name = pynvml.nvmlDeviceGetName(self.handle)
        except Exception:  # no NVML library, no GPU: the figures say "n/a"
            self.nvml = self.handle = self.name = None

    def __enter__(self) -> GpuSampler:
        if self.nvml:
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.nvml:
            self.thread.join()

    def _sample(self) -> None:
        while not self.stop.wait(self.period):
            rates = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
            memory = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
            self.samples.append((rates.gpu, memory.used / 2**20))

    def summary(self) -> dict[str, float | None]:
        if not self.samples:
            return {"gpu_util_mean": None, "gpu_util_max": None, "gpu_memory_max_mib": None}
        utils = [u for u, _ in self.samples]
        return {
            "gpu_util_mean": round(sum(utils) / len(utils), 1),
            "gpu_util_max": max(utils),
            "gpu_memory_max_mib": round(max(m for _, m in self.samples)),
        }


def rows(count: int, features: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, features)).astype("float32")
    y = np.argmax(X @ rng.normal(size=(features, 10)).astype("float32"), axis=1)
    return X, y


def measure(X, y, batch: int, epochs: int) -> dict:
    """Samples per second of `epochs` epochs of one compiled network at `batch` rows a replica."""
    from tasks.models.architecture import build_network
    from tasks.models.devices import detect_device

    device = detect_device()
    global_batch = device.global_batch_size(batch)
    with device.applied():
        model = build_network(X[:10_000], 10, 128, 3e-3, device.steps_per_execution)
        model.fit(X, y, batch_size=global_batch, epochs=1, verbose=0)  # compiles
        with GpuSampler() as gpu:
            start = time.perf_counter()
            history = model.fit(X, y, batch_size=global_batch, epochs=epochs, verbose=0)
            seconds = time.perf_counter() - start
    return {
        **device.as_params(),
        "gpu": gpu.name,
        "batch_per_replica": batch,
        "rows": len(X),
        "epochs": epochs,
        "seconds": round(seconds, 3),
        "samples_per_second": round(len(X) * epochs / seconds),
        "final_accuracy": round(float(history.history["accuracy"][-1]), 4),
        **gpu.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 4096])
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    X, y = rows(args.rows, args.features)
    results = [measure(X, y, batch, args.epochs) for batch in args.batch]
    print(f"{args.rows:,} rows x {args.features} float32 features, {platform.node()}")
    for r in results:
        util = "n/a" if r["gpu_util_mean"] is None else f"{r['gpu_util_mean']:.0f}% mean"
        print(
            f"  {r['device_backend']} on {r['device_device']} ({r['device_precision']}, "
            f"{r['device_strategy']}), batch {r['batch_per_replica']:5d}: "
            f"{r['samples_per_second']:>10,} samples/s  GPU utilization {util}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
