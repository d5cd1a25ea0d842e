"""What the benchmarks share: a fresh home with `mlops up`'s servers, whole processes timed
with their peak memory, and generated data written row group by row group."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
MLOPS = str(BIN / "mlops")
MIB = 2**20
# The frameworks' imports alone, with the Keras backend's runtime up: the baseline memory any
# job pays, measured as its own process.
IMPORTS = [
    sys.executable,
    "-c",
    "import great_expectations, keras, mlflow, prefect, sklearn; keras.ops.ones(1)",
]


def plain_network(X_train, y_train, X_val, y_val, classes: int, epochs: int):
    """The reference network as an engineer writes it by hand with Keras alone: scaling
    adapted to (at most 100k of) the training rows, Dense(128, ReLU), softmax; Adam 3e-3,
    batch 64, early stopping with patience 8. Fitted; the benchmarks' yardstick."""
    import keras

    keras.utils.set_random_seed(42)
    scaling = keras.layers.Normalization()
    scaling.adapt(X_train[:100_000])
    model = keras.Sequential(
        [
            keras.Input(shape=(X_train.shape[1],)),
            scaling,
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(patience=8, restore_best_weights=True)
    model.fit(
        X_train,
        y_train,
        validation_data=(X_val, y_val),
        epochs=epochs,
        batch_size=64,
        callbacks=[stop],
        verbose=0,
    )
    return model


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss: int  # bytes, the high-water mark of the process that did the work
    last_line: str  # of its stdout: the --json result


@contextlib.contextmanager
def fresh_home() -> Iterator[dict[str, str]]:
    """The environment of a new MLOPS_HOME whose Prefect and MLflow servers are up (as the
    README advises, so no command pays Prefect's ephemeral start-up)."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MLOPS_HOME": home}
        for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLOPS_DASK_ADDRESS"):
            env.pop(name, None)
        up = subprocess.Popen([MLOPS, "up"], env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while not (Path(home) / "up.json").exists():
                if time.monotonic() > deadline or up.poll() is not None:
                    raise SystemExit("mlops up did not start its servers")
                time.sleep(0.5)
            yield env
        finally:
            subprocess.run([MLOPS, "down"], env=env, capture_output=True, check=False)
            up.wait(timeout=30)


# What infra/ has the scheduler (which unpickles every task) and the workers load at start.
PRELOAD = {
    "scheduler": ["--preload", "flows.sweep"],
    "worker": ["--preload", "keras", "--preload", "flows.sweep"],
}


@contextlib.contextmanager
def dask_cluster(workers: int, env: dict[str, str]) -> Iterator[str]:
    """The production shape of infra/: a `dask scheduler` process and `workers` processes of
    `dask worker --nthreads 1` on loopback, all preloading the platform; yields the
    scheduler's address."""
    import socket

    from distributed import Client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    commands = [["scheduler", "--port", str(port)]]
    commands += [["worker", address, "--nthreads", "1"]] * workers
    processes = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                *command,
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                *PRELOAD[command[0]],
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def measure(command: list[str], env: dict[str, str]) -> Measured:
    """Run a command to its end: wall time, and peak RSS from the kernel's own accounting."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    last = (stdout.strip().splitlines() or [""])[-1]
    return Measured(seconds, usage.ru_maxrss * 1024, last)  # ru_maxrss: KiB


def write_classes(path: Path, rows: int, features: int, rows_per_group: int = 100_000) -> None:
    """A Parquet file of float32 features ``x0..`` and ten classes that depend on them, written
    row group by row group (writing holds one group, whatever the size)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(features, 10)).astype("float32")
    names = [f"x{i}" for i in range(features)]
    schema = pa.schema([*(pa.field(n, pa.float32()) for n in names), ("target", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, rows_per_group):
            X = rng.normal(size=(min(rows_per_group, rows - start), features)).astype("float32")
            target = np.argmax(X @ weights, axis=1)
            writer.write_table(pa.table({**dict(zip(names, X.T, strict=True)), "target": target}))
