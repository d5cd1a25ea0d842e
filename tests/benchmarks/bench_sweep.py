"""Benchmark: the sweep on two Dask workers against the same sweep on one (serially).

Run: `.venv/bin/python tests/benchmarks/bench_sweep.py [--epochs N] [--folds K] [--repeat R]`.
Both sides run the default grid through `run_sweep` on a cluster shaped as infra/ runs it (a
`dask scheduler` process and `dask worker --nthreads 1` processes on loopback, preloading the
platform, with infra/'s worker environment), side by side in one run, median of `--repeat`.
Each fresh cluster runs the sweep twice: the first sweep pays what is left of the cluster's
one-time costs (each worker's Prefect engine starts on its first task); the second is what a
long-lived cluster does for every scheduled retraining after that, and the target is
measured on it.
This process has detected the device first, as the training flow does before its sweep. The
clock covers the whole sweep: submitting the tasks, the folds, the nested MLflow runs and
the refit of the best. Target: two workers at least 1.7x faster than one, once warm. The
2-core machine must be otherwise idle: another job on its cores goes to the parallel side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from harness import dask_cluster

from tasks.registry import tracking

TARGET_RATIO = 1.7
# The workers' environment in infra/: a worker of one thread runs on one core (Dask already
# pins OpenMP / MKL / OpenBLAS to one thread per worker, TensorFlow's own pools are pinned
# here), and glibc keeps its adaptive malloc thresholds (see infra/docker-compose.yml).
WORKER_ENV = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "MALLOC_TRIM_THRESHOLD_": "67108864",
    "MALLOC_MMAP_THRESHOLD_": "33554432",
}


def timed_sweeps(workers: int, settings, splits, epochs: int, candidates) -> list[float]:
    """Seconds of the first and the second sweep on a fresh cluster of `workers` workers."""
    from flows.sweep import run_sweep

    seconds = []
    with dask_cluster(workers, {**os.environ, **WORKER_ENV}) as address:
        on_cluster = settings.model_copy(update={"dask_address": address})
        for attempt in ("first", "second"):
            name = f"{workers} workers, {attempt}"
            with tracking.tracking_run(on_cluster, "bench", name, {}) as run_id:
                start = time.perf_counter()
                result = run_sweep(on_cluster, run_id, "bench", splits, epochs, candidates)
                seconds.append(time.perf_counter() - start)
            print(f"{name}: {seconds[-1]:.1f} s, best {result.candidate.name}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The defaults are `mlops train --sweep`'s: 60 epochs at most (early stopping), 5 folds.
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # The sweep runs outside a flow here: its task runs have no flow run to send logs to.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from tasks.data.sources import load_frame
    from tasks.data.splits import split_frame
    from tasks.evaluation.sweep import search_space
    from tasks.models.devices import detect_device
    from tasks.platform.settings import Settings

    with tempfile.TemporaryDirectory() as home, prefect_test_harness():
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()  # for the worker processes
        settings = Settings(home=home, cv_folds=args.folds)
        settings.prepare()
        detect_device()
        splits = split_frame(load_frame("builtin:digits"), "target", 0.2, 0.2, settings.seed)
        candidates = search_space("grid", settings.seed)
        runs = {workers: [] for workers in (1, 2)}
        for _ in range(args.repeat):
            for workers, times in runs.items():
                times.append(timed_sweeps(workers, settings, splits, args.epochs, candidates))
    (cold_serial, serial), (cold_parallel, parallel) = (
        [statistics.median(times) for times in zip(*runs[w], strict=True)] for w in (1, 2)
    )
    print(
        f"{len(candidates)} candidates x {args.folds} folds, {args.epochs} epochs, "
        f"median of {args.repeat}:"
    )
    print("                       first sweep   second sweep")
    print(f"  1 worker (serial)    {cold_serial:9.1f} s {serial:12.1f} s")
    print(f"  2 workers            {cold_parallel:9.1f} s {parallel:12.1f} s")
    print(
        f"  speed-up             {cold_serial / cold_parallel:9.2f} x {serial / parallel:12.2f} x"
    )
    verdict = "met" if serial / parallel >= TARGET_RATIO else "MISSED"
    print(f"  target: 2 workers >= {TARGET_RATIO:g}x faster than 1 (second sweep): {verdict}")


if __name__ == "__main__":
    main()
