"""Shared fixtures: an isolated MLOPS_HOME, and data files a user might hand the platform."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import boto3
import pandas as pd
import pytest

# Before any test imports TensorFlow, Prefect or MLflow: quiet, offline, no telemetry.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as load_settings() sets it for mlops
# MLflow 3.17's tracking server (`mlflow server`, `mlflow ui`) on a SQL store otherwise starts
# its job runner: about ten huey consumers (~250 MB each, tens of seconds of CPU at start),
# which outlive the server's SIGTERM. The platform runs no MLflow jobs.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
# `mlflow ui` (the tracking server of `mlops up`) otherwise serves with 4 uvicorn workers:
# 25 s of CPU and 1.3 GB to start where 1 worker takes 10 s and 0.5 GB, with two stacks up at
# once under `pytest -n 2`. A user's `mlops up` keeps MLflow's default.
os.environ.setdefault("MLFLOW_WORKERS", "1")
# Prefect's own files (profiles, result storage, the SQLite database of a command's ephemeral
# server) in a folder of this process's: never the developer's ~/.prefect, and never one that
# the other worker of `pytest -n 2` writes at the same time. Commands the tests start inherit it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="mlops-tests-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)

_ISOLATED = ("MLFLOW_TRACKING_URI", "MLOPS_ARTIFACT_URI", "PREFECT_API_URL")
MOTO = str(Path(sys.executable).with_name("moto_server"))
MLOPS = str(Path(sys.executable).with_name("mlops"))  # the command, from this environment
# The serve check starts MLflow's scoring server for every registered version (seconds of
# CPU each, dozens of versions): only the tests about serving (and on S3) turn it on.
NOT_SERVED = ("MLOPS_SERVE_CHECK", "false")


# The modules that take minutes (stacks, servers, real trainings), longest first. `make test`
# runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: each worker takes a whole module at
# a time, in this order, so the long ones start at once and the short ones fill in at the end
# (xdist's own order, most tests first, would leave a long module running alone at the end).
# From a full run's per-module seconds (2026-12-08); a module not named keeps its place after.
SLOWEST_MODULES = (
    "tests/integration/test_deployments.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_feedback.py",
    "tests/integration/test_closed_loop.py",
    "tests/integration/test_auth.py",
    "tests/integration/test_model_serving.py",
    "tests/integration/test_cli.py",
    "tests/flows/test_training_flow.py",
    "tests/integration/test_export.py",
    "tests/integration/test_s3.py",
    "tests/integration/test_sweep.py",
    "tests/flows/test_custom_candidates.py",
    "tests/integration/test_concurrency.py",
    "tests/integration/test_project_deployments.py",
    "tests/flows/test_mixed_data_flow.py",
    "tests/integration/test_fresh_exports.py",
    "tests/integration/test_postgres_stack.py",
    "tests/unit/models/test_network.py",
    "tests/unit/quality/test_suggest.py",
    "tests/unit/quality/test_validation.py",
    "tests/unit/platform/test_declare.py",
)


def pytest_collection_modifyitems(config, items):
    """The slowest modules first (a stable sort: each module's tests keep their order)."""
    rank = {module: place for place, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def run_mlops(*args: str, env: dict[str, str], **options) -> subprocess.CompletedProcess:
    """`mlops ARGS` as a user runs it, in the environment `env`, its output captured."""
    return subprocess.run(
        [MLOPS, *args], env=env, capture_output=True, text=True, timeout=600, check=False, **options
    )


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh MLOPS_HOME with the embedded defaults (SQLite store, local artifacts)."""
    path = tmp_path / "home"
    monkeypatch.setenv("MLOPS_HOME", str(path))
    monkeypatch.setenv(*NOT_SERVED)
    for name in _ISOLATED:
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture(scope="session")
def digits() -> pd.DataFrame:
    from tasks.data.sources import load_frame

    return load_frame("builtin:digits")


@pytest.fixture
def stored_model(home, digits):
    """A logistic regression fitted on 400 digits rows, stored as a training run stores its
    model (in an experiment "toy" of the fresh home): the settings, and the logged model."""
    from tasks.models.baselines import build_baseline
    from tasks.platform.settings import load_settings
    from tasks.registry import packaging, tracking

    settings = load_settings()
    features = [c for c in digits.columns if c != "target"]
    estimator = build_baseline("logistic_regression", seed=0).fit(
        digits[features].iloc[:400], digits["target"].iloc[:400]
    )
    with tracking.tracking_run(settings, "toy", "toy", {}) as run_id:
        logged = packaging.log_model(settings, run_id, estimator, features, digits.head(5))
    return settings, logged


@pytest.fixture(scope="session")
def bad_files(digits, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Files of the kinds users really send, each with the words its rejection must contain."""
    folder = tmp_path_factory.mktemp("bad_files")
    files: dict[str, tuple[Path, str]] = {}

    def add(kind: str, words: str, frame: pd.DataFrame | None = None, text: str = ""):
        path = folder / f"{kind}.csv"
        if frame is not None:
            frame.to_csv(path, index=False)
        else:
            path.write_text(text)
        files[kind] = (path, words)

    good = digits.to_csv(index=False)
    add("empty", "is empty", text="")
    add("semicolons", "semicolon-delimited", text=digits.to_csv(index=False, sep=";"))
    add("truncated", "looks truncated", text=good[: len(good) // 2 - 7])

    nulls = digits.copy()
    nulls.loc[[3, 17, 40], "pixel_2_5"] = None
    add("nulls", "pixel_2_5: expect_column_values_to_not_be_null: 3 of 1797 rows", nulls)

    out_of_range = digits.copy()
    out_of_range.loc[[5, 6], "pixel_4_4"] = 255
    add("out_of_range", "pixel_4_4: expect_column_max_to_be_between", out_of_range)

    text = digits.astype({"pixel_3_3": object})
    text.loc[10, "pixel_3_3"] = "seven"
    add("text_in_numeric", "pixel_3_3: expect_column_values_to_be_in_type_list", text)

    missing_class = digits[digits["target"] != 7]
    add("missing_class", "target: expect_column_distinct_values_to_contain_set", missing_class)

    dropped = digits.drop(columns=["pixel_7_7"])
    add("dropped_column", "pixel_7_7", dropped)

    add("no_target", "target column 'target' is not in the data", digits.drop(columns="target"))
    return files


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """A real Prefect API for the whole session (Prefect's test harness: a temporary server)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """An MLOPS_HOME shared by one test module: state built once, then examined by its tests."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_CV_FOLDS", "2")  # keeps a sweep (or --cv) under a minute on two cores
        patch.setenv(*NOT_SERVED)
        for name in _ISOLATED:
            patch.delenv(name, raising=False)
        yield home


@pytest.fixture(scope="session")
def free_port():
    """A function that finds a loopback port nothing listens on."""
    return _free_port


_GIVEN_PORTS: set[int] = set()


def _free_port() -> int:
    """A port nothing listens on, never one this process has handed out before (a stack takes
    two at once; the other worker's ports are the kernel's to keep apart: it picks at random)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def wait_until(check, seconds: float, what: str):
    """Poll until check() returns something true, and return it; or fail naming what."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def wait_for():
    """wait_until, for tests and fixtures: wait_for(check, seconds, what)."""
    return wait_until


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def mlops_stack(home: Path, free_port, serve_options: tuple[str, ...] = (), **extra_env: str):
    """`mlops up` then `mlops serve SERVE_OPTIONS` for one home (with ``extra_env`` set), exactly
    as the README tells a user: its home, environment, servers and processes."""
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")
        },
        "MLOPS_HOME": str(home),
        "MLOPS_CV_FOLDS": "2",
        **extra_env,
    }
    ports = [free_port(), free_port()]
    up = subprocess.Popen(
        [MLOPS, "up", "--prefect-port", str(ports[0]), "--mlflow-port", str(ports[1])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    servers_file = home / "up.json"
    try:
        wait_until(servers_file.exists, 180, "mlops up")
        servers = json.loads(servers_file.read_text())
        serve_log = (home / "serve.log").open("w")
        serve = subprocess.Popen(  # from another directory: flows load as installed modules
            [MLOPS, "serve", *serve_options],
            stdout=serve_log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
        yield {"home": home, "env": env, "servers": servers, "serve": serve, "up": up}
    finally:
        if "serve" in locals() and serve.poll() is None:
            serve.kill()
        subprocess.run([MLOPS, "down"], env=env, check=False, capture_output=True)
        up.wait(timeout=30)


@contextmanager
def moto_s3():
    """moto's S3 server; after four setup calls it demands real IAM credentials."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _listening(port), 30, "moto's S3 server")
        setup = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="mlops")
        key = iam.create_access_key(UserName="mlops")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="mlops", PolicyName="all", PolicyDocument=json.dumps(policy))
        boto3.client("s3", **setup).create_bucket(Bucket="mlops-artifacts")
        yield {
            "endpoint": endpoint,
            "key": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
            "bucket": "mlops-artifacts",
            "process": server,
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server():
    """One S3 server for the session."""
    with moto_s3() as server:
        yield server


@pytest.fixture
def private_s3():
    """An S3 server of a test's own, which the test may stop."""
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def mlflow_servers(tmp_path_factory):
    """A function starting `mlflow server` processes (stopped when the module ends): it takes
    the backend store, extra arguments and environment, and returns (url, process); the
    process leads a group with its workers (`os.killpg(process.pid, ...)` stops them all)."""
    started: list[subprocess.Popen] = []

    def start(backend: str, *args: str, env: dict[str, str] | None = None, port: int = 0):
        port = port or _free_port()
        log = tmp_path_factory.mktemp("mlflow") / "server.log"
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server",
             "--backend-store-uri", backend, *args,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env={**os.environ, **(env or {})}, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are children: stop the whole group
        )  # fmt: skip
        started.append(server)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(healthy, 180, f"mlflow server (log: {log})")
        return url, server

    yield start
    for server in started:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def epoch_recorder():
    """A Keras callback class: records the epochs a fit runs, and dies like a killed process at
    ``die_at`` (`epoch_recorder(die_at=4)`)."""
    import keras

    class Epochs(keras.callbacks.Callback):
        def __init__(self, die_at: int | None = None):
            super().__init__()
            self.die_at = die_at
            self.run: list[int] = []

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.die_at:
                raise KeyboardInterrupt
            self.run.append(epoch)

    return Epochs


def registry_snapshot(client, model: str) -> dict:
    """What a registered model holds, to compare before and after something was refused."""
    registered = client.get_registered_model(model)
    versions = client.search_model_versions(f"name = '{model}'")
    return {
        "aliases": dict(registered.aliases),
        "tags": dict(registered.tags),
        "versions": {v.version: dict(v.tags) for v in versions},
    }
