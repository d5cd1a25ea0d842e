"""Fault injection against real processes: `mlops train` killed with SIGKILL at the worst
moments, the MLflow server killed and the S3 server stopped during registration, two
promotions at once. Each asserts what a user sees and that the registry is consistent:
every version READY, complete and backed by a FINISHED run; `champion` loadable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import mlflow
import pytest
from conftest import MLOPS
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def train(env: dict[str, str], *args: str, failpoints: dict[str, str] | None = None):
    """`mlops train --json` with a short job; returns (exit status, result or None, stderr)."""
    extra = {"MLOPS_FAILPOINTS": json.dumps(failpoints)} if failpoints else {}
    done = subprocess.run(
        [MLOPS, "train", "--epochs", "5", "--json", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env, **extra},
        check=False,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    return done.returncode, result, done.stderr


def assert_consistent(tracking_uri: str, model: str = "digits") -> dict[str, str]:
    """The registry as a person needs it after any failure; returns version -> aliases."""
    client = MlflowClient(tracking_uri)
    aliases: dict[str, str] = {}
    for version in client.search_model_versions(f"name = '{model}'"):
        assert version.status == "READY"
        assert version.tags.get("registration") == "complete", version.version
        assert client.get_run(version.run_id).info.status == "FINISHED"
        aliases[str(version.version)] = ""
    if aliases:
        for alias, version in sorted(client.get_registered_model(model).aliases.items()):
            aliases[str(version)] = ",".join(filter(None, [aliases[str(version)], alias]))
    if aliases:
        from tasks.data.sources import load_frame

        mlflow.set_tracking_uri(tracking_uri)
        champion = mlflow.pyfunc.load_model(f"models:/{model}@champion")
        rows = load_frame("builtin:digits").drop(columns="target").head(5)
        assert champion.predict(rows)["prediction"].between(0, 9).all()
    return aliases


def paused_before_registration(env: dict[str, str], home: Path, wait_for):
    """`mlops train --json` started in the background and held, trained, at the failpoint just
    before registering; returns the process and the marker to remove to let it go on."""
    run = subprocess.Popen(
        [MLOPS, "train", "--epochs", "5", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            **env,
            "MLOPS_FAILPOINTS": json.dumps({"before-register": "pause"}),
        },
    )
    marker = home / "failpoints" / "before-register"
    wait_for(marker.exists, 600, "the run reaching registration")
    return run, marker


@pytest.fixture(scope="module")
def env(module_home, prefect_api) -> dict[str, str]:
    return {"MLOPS_HOME": str(module_home), "PREFECT_API_URL": prefect_api}


@pytest.fixture(scope="module")
def tracking_uri(module_home) -> str:
    return f"sqlite:///{module_home / 'mlflow.db'}"


@pytest.fixture(scope="module")
def champion(env, tracking_uri) -> str:
    """The module's home with a champion trained by a whole, uninterrupted run."""
    status, result, stderr = train(env)
    assert status == 0, stderr[-2000:]
    return result["version"]


def test_killed_after_training_the_rerun_reuses_the_fitted_candidates(home, prefect_api):
    env = {"MLOPS_HOME": str(home), "PREFECT_API_URL": prefect_api, "MLOPS_CV_FOLDS": "2"}
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    status, _, _ = train(env, failpoints={"after-fit": "kill"})
    assert status == -signal.SIGKILL
    assert assert_consistent(tracking_uri) == {}  # nothing registered by the dead run

    status, result, stderr = train(env)
    assert status == 0, stderr[-2000:]
    assert result["version"] == "1" and not result["skipped"]
    assert result["reused"] == ["gradient_boosting", "keras_mlp", "logistic_regression", "svm"]
    assert assert_consistent(tracking_uri) == {"1": "champion"}
    # The killed run does not stay RUNNING: in MLflow and in Prefect it ended, saying why.
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    assert sorted(run.info.status for run in runs) == ["FAILED", "FINISHED"]
    (dead,) = [run for run in runs if run.info.status == "FAILED"]
    assert "its process (pid" in dead.data.tags["mlops.failure"]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect_client:
        flow_run = prefect_client.read_flow_run(dead.data.tags["mlops.flow_run_id"])
    assert flow_run.state.name == "Crashed" and "died" in flow_run.state.message


def test_killed_right_after_creating_a_version_the_next_run_removes_it(env, tracking_uri, champion):
    status, _, _ = train(env, "--force", failpoints={"after-register": "kill"})
    assert status == -signal.SIGKILL
    client = MlflowClient(tracking_uri)
    (orphan,) = client.search_model_versions("name = 'digits' and tags.registration = 'pending'")

    status, result, stderr = train(env)
    assert status == 0, stderr[-2000:]
    assert result["skipped"] and result["version"] == champion  # the identical job answers
    assert assert_consistent(tracking_uri) == {champion: "champion"}
    dead = client.get_run(orphan.run_id)
    assert dead.info.status == "FAILED" and "abandoned" in dead.data.tags["mlops.failure"]


def test_killed_after_moving_the_alias_the_next_run_completes_the_version(
    env, tracking_uri, champion
):
    status, _, _ = train(env, "--force", failpoints={"after-alias": "kill"})
    assert status == -signal.SIGKILL
    client = MlflowClient(tracking_uri)
    (half,) = client.search_model_versions("name = 'digits' and tags.registration = 'pending'")
    earned = client.get_model_version("digits", half.version).aliases
    assert earned  # it had earned its alias when it died

    status, _, stderr = train(env)
    assert status == 0, stderr[-2000:]
    aliases = assert_consistent(tracking_uri)
    assert aliases[str(half.version)] == ",".join(sorted(earned))
    assert client.get_run(half.run_id).data.tags["mlops.recovered"] == "registration completed"


def test_two_promotions_at_once_move_the_alias_once_with_a_true_record(env, tracking_uri, champion):
    status, _, stderr = train(env, "--force")  # a second version to promote
    assert status == 0, stderr[-2000:]
    client = MlflowClient(tracking_uri)
    holder = str(client.get_model_version_by_alias("digits", "champion").version)
    target = str(
        max(
            int(v.version)
            for v in client.search_model_versions("name = 'digits'")
            if str(v.version) != holder
        )
    )
    history = client.get_registered_model("digits").tags["champion.history"].split(",")
    results: list[subprocess.CompletedProcess] = []

    def promote() -> None:
        results.append(
            subprocess.run(
                [MLOPS, "promote", "digits", "--version", target, "--json"],
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, **env},
                check=False,
            )
        )

    threads = [threading.Thread(target=promote) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.returncode for r in results) == [0, 1]
    (moved,) = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results if r.returncode == 0]
    (refused,) = [r.stderr for r in results if r.returncode == 1]
    assert f"digits v{target} already holds 'champion': nothing to do" in refused
    assert moved["previous_version"] == holder
    assert str(client.get_model_version_by_alias("digits", "champion").version) == target
    tags = client.get_model_version("digits", target).tags
    assert tags["champion.previous_version"] == holder
    after = client.get_registered_model("digits").tags["champion.history"].split(",")
    assert after == [*history, target]  # one move, recorded once
    assert_consistent(tracking_uri)


def test_mlflow_server_killed_during_registration(
    prefect_api, home, tmp_path, mlflow_servers, wait_for
):
    """The tracking server dies while the run registers: a clear failure naming the server,
    bounded in time; after a restart the registry holds nothing of that run."""
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    url, server = mlflow_servers(backend, "--default-artifact-root", str(tmp_path / "served"))
    env = {
        "MLOPS_HOME": str(home),
        "PREFECT_API_URL": prefect_api,
        "MLFLOW_TRACKING_URI": url,
        "MLOPS_CV_FOLDS": "2",
    }
    run, marker = paused_before_registration(env, home, wait_for)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)
    marker.unlink()
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 1
    assert f"cannot reach the MLflow tracking server at {url}" in stderr
    assert "Traceback" not in stderr

    port = url.rsplit(":", 1)[1]
    url, _ = mlflow_servers(
        backend, "--default-artifact-root", str(tmp_path / "served"), port=int(port)
    )
    client = MlflowClient(url)
    assert client.search_registered_models() == [] or not client.search_model_versions(
        "name = 'digits'"
    )


def test_s3_server_stopped_during_registration(prefect_api, home, private_s3, wait_for):
    """The bucket's endpoint goes away after training: the run fails naming the endpoint,
    and nothing is registered."""
    env = {
        "MLOPS_HOME": str(home),
        "PREFECT_API_URL": prefect_api,
        "MLOPS_ARTIFACT_URI": f"s3://{private_s3['bucket']}/platform",
        "MLFLOW_S3_ENDPOINT_URL": private_s3["endpoint"],
        "AWS_ACCESS_KEY_ID": private_s3["key"],
        "AWS_SECRET_ACCESS_KEY": private_s3["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLOPS_CV_FOLDS": "2",
    }
    run, marker = paused_before_registration(env, home, wait_for)
    private_s3["process"].terminate()
    private_s3["process"].wait(timeout=30)
    marker.unlink()
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 1
    assert private_s3["endpoint"] in stderr and "nothing registered" in stderr
    assert "Traceback" not in stderr
    assert assert_consistent(f"sqlite:///{home / 'mlflow.db'}") == {}


def test_a_killed_command_leaves_no_process_behind(home, wait_for):
    """`mlops train` killed with SIGKILL (the OOM killer, an evicted pod) with no Prefect API
    configured: the API server it started for itself ends with it."""
    import psutil

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["MLOPS_FAILPOINTS"] = json.dumps({"before-register": "pause"})
    run = subprocess.Popen(
        [MLOPS, "train", "--epochs", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for((home / "failpoints" / "before-register").exists, 600, "registration")
        started = psutil.Process(run.pid).children(recursive=True)
        servers = [p for p in started if "prefect.server.api.server:create_app" in p.cmdline()]
        assert servers, [p.cmdline() for p in started]
    finally:
        run.kill()
        run.wait(timeout=30)
    _, alive = psutil.wait_procs(started, timeout=30)
    assert alive == []


class _Planted:
    """What an attacker who can write the bucket plants: a pickle that acts when loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_tampered_result_is_never_loaded_and_its_step_recomputes(home, prefect_api, tmp_path):
    import base64

    import cloudpickle

    from flows.results import sign

    env = {"MLOPS_HOME": str(home), "PREFECT_API_URL": prefect_api}
    status, _, _ = train(env, failpoints={"after-fit": "kill"})
    assert status == -signal.SIGKILL  # the fitted candidates stay persisted for the rerun
    marker = tmp_path / "planted"
    results = home / "artifacts" / "prefect-results"
    for family, key in (("keras_mlp", None), ("gradient_boosting", b"not-the-platform-key")):
        (path,) = results.glob(f"fit_candidate-{family}-*")
        record = json.loads(path.read_bytes().partition(b"\n")[2])  # a well-formed record
        record["result"] = base64.b64encode(cloudpickle.dumps(_Planted(marker))).decode()
        forged = json.dumps(record).encode()
        path.write_bytes(forged if key is None else sign(key, forged))

    status, result, stderr = train(env)
    assert status == 0, stderr[-2000:]
    assert not marker.exists()  # the planted code never ran
    assert result["reused"] == ["logistic_regression", "svm"]  # the forged ones were refitted
    assert stderr.count("failed its signature: recomputed") >= 2
    assert assert_consistent(f"sqlite:///{home / 'mlflow.db'}") == {"1": "champion"}
