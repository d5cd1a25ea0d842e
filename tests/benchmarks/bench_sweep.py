"""Benchmark: the sweep on two local Dask workers against the same sweep on one (serially).

Run: `.venv/bin/python tests/benchmarks/bench_sweep.py [--epochs N] [--folds K] [--repeat R]`.
Both sides run the default grid through `run_sweep` on a local Dask cluster of worker
processes (one thread each), side by side in one run, median of `--repeat`; workers import
the platform before the clock starts. The clock covers the whole sweep: the folds, the nested
MLflow runs and the refit of the best. Target: two workers at least 1.7x faster than one.
The 2-core machine must be otherwise idle: another job on its cores goes to the parallel side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

TARGET_RATIO = 1.7
# A worker of one thread runs on one core: Dask already pins OpenMP / MKL / OpenBLAS to one
# thread per worker, TensorFlow's own pools are pinned here (infra/ sets the same).
ONE_CORE = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def warm(client) -> None:
    """Each worker imports Keras and the candidates once, as a long-lived cluster has."""

    def load() -> None:
        import keras  # noqa: F401

        import tasks.sweep  # noqa: F401

    client.run(load)


def timed_sweep(workers: int, settings, splits, epochs: int, candidates) -> tuple[float, str]:
    from distributed import Client, LocalCluster

    from flows.sweep import run_sweep
    from tasks import registry

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=None, env=ONE_CORE
        ) as cluster,
        Client(cluster) as client,
    ):
        warm(client)
        on_cluster = settings.model_copy(update={"dask_address": cluster.scheduler_address})
        with registry.tracking_run(on_cluster, "bench", f"{workers} workers", {}) as run_id:
            start = time.perf_counter()
            result = run_sweep(on_cluster, run_id, "bench", splits, epochs, candidates)
            return time.perf_counter() - start, result.candidate.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # The sweep runs outside a flow here: its task runs have no flow run to send logs to.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from tasks.data import load_frame, split_frame
    from tasks.settings import Settings
    from tasks.sweep import search_space

    with tempfile.TemporaryDirectory() as home, prefect_test_harness():
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()  # for the worker processes
        settings = Settings(home=home, cv_folds=args.folds)
        settings.prepare()
        splits = split_frame(load_frame("builtin:digits"), "target", 0.2, 0.2, settings.seed)
        candidates = search_space("grid", settings.seed)
        results: dict[int, list[float]] = {}
        winners: dict[int, set[str]] = {1: set(), 2: set()}
        for _ in range(args.repeat):
            for workers in (1, 2):
                seconds, winner = timed_sweep(workers, settings, splits, args.epochs, candidates)
                results.setdefault(workers, []).append(seconds)
                winners[workers].add(winner)
    serial, parallel = (statistics.median(results[w]) for w in (1, 2))
    print(
        f"{len(candidates)} candidates x {args.folds} folds, {args.epochs} epochs, "
        f"median of {args.repeat}:"
    )
    print(f"  1 worker (serial)    {serial:7.1f} s")
    print(f"  2 workers            {parallel:7.1f} s")
    print(f"  speed-up             {serial / parallel:7.2f} x")
    # Near-ties (within float rounding of another thread layout) may pick either winner.
    for workers, names in winners.items():
        print(f"  best on {workers} worker(s): {', '.join(sorted(names))}")
    verdict = "met" if serial / parallel >= TARGET_RATIO else "MISSED"
    print(f"  target: 2 workers >= {TARGET_RATIO:g}x faster than 1: {verdict}")


if __name__ == "__main__":
    main()
