"""The stack's authenticated APIs, started with the stack's own commands on loopback: a Prefect
server with basic auth, and MLflow's basic-auth tracking server (mlflow/start.sh with
mlflow/basic_auth.ini) with the accounts infra/mlflow-accounts.py makes. The platform works
with the right credentials and, with the wrong ones, fails in one line and changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
from conftest import registry_snapshot, run_mlops
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFECT_AUTH = "admin:prefect-pass-9f3k"
ACCOUNTS = {
    "admin": "admin-pass-4c81d2",
    "trainer": "trainer-pass-77a0e",
    "reviewer": "reviewer-pass-19bc",
}


def status_of(url: str, method: str = "GET", user: str | None = None) -> int:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Content-Type", "application/json")
    if user:
        request.add_header("Authorization", f"Basic {b64encode(user.encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0


@pytest.fixture(scope="module")
def servers(tmp_path_factory, free_port, wait_for):
    """Both servers, as the stack starts them; MLflow's accounts made as at stack start."""
    folder = tmp_path_factory.mktemp("auth")
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_"))
    }
    environment["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    prefect_port, mlflow_port = free_port(), free_port()
    started = []
    try:
        prefect_env = {
            **environment,
            "PREFECT_HOME": str(folder / "prefect"),
            "PREFECT_SERVER_API_AUTH_STRING": PREFECT_AUTH,
        }
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        started.append(_start([*command, "--port", str(prefect_port)], prefect_env, folder))
        mlflow_env = {
            **environment,
            "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{folder / 'auth.db'}",
            "MLFLOW_ARTIFACTS_DESTINATION": str(folder / "artifacts"),
            "MLFLOW_AUTH_TEMPLATE": str(auth_template(folder)),
            "MLFLOW_ADMIN_USERNAME": "admin",
            "MLFLOW_ADMIN_PASSWORD": ACCOUNTS["admin"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-long-random-string-for-the-forms",
            "MLFLOW_HOST": "127.0.0.1",
            "MLFLOW_PORT": str(mlflow_port),
            "MLFLOW_WORKERS": "1",
        }
        started.append(_start(["sh", str(ROOT / "mlflow" / "start.sh")], mlflow_env, folder))
        prefect_api = f"http://127.0.0.1:{prefect_port}/api"
        tracking = f"http://127.0.0.1:{mlflow_port}"
        wait_for(lambda: status_of(f"{prefect_api}/health") == 200, 180, "the Prefect server")
        wait_for(lambda: status_of(f"{tracking}/health") == 200, 180, "the MLflow server")
        accounts = {
            **environment,
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_ADMIN_USERNAME": "admin",
            "MLFLOW_ADMIN_PASSWORD": ACCOUNTS["admin"],
            "MLFLOW_TRAINING_USERNAME": "trainer",
            "MLFLOW_TRAINING_PASSWORD": ACCOUNTS["trainer"],
            "MLFLOW_REVIEWER_USERNAME": "reviewer",
            "MLFLOW_REVIEWER_PASSWORD": ACCOUNTS["reviewer"],
            "MLOPS_ARTIFACT_URI": str(folder / "platform"),
        }
        script = [sys.executable, str(ROOT / "infra" / "mlflow-accounts.py")]
        subprocess.run(script, env=accounts, check=True, capture_output=True, timeout=120)
        yield {"prefect_api": prefect_api, "tracking": tracking, "folder": folder}
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def auth_template(folder: Path) -> Path:
    """mlflow/basic_auth.ini with MLflow's credential cache on: each request otherwise pays a
    scrypt check of the password (a third of a second of CPU, up to a second on a busy core;
    hundreds of requests a training). Only successful checks are cached: wrong passwords and
    missing grants are still refused."""
    template = folder / "basic_auth.ini"
    production = (ROOT / "mlflow" / "basic_auth.ini").read_text()
    template.write_text(f"{production.rstrip()}\nauth_cache_ttl_seconds = 3600\n")
    return template


def _start(command: list[str], env: dict[str, str], folder: Path) -> subprocess.Popen:
    log = (folder / f"{Path(command[-1]).name}.log").open("w")
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def mlops(servers, user: str, *args: str, password: str | None = None, prefect: bool = True):
    """`mlops ARGS` as `user` of the tracking server, with (or without) Prefect's auth."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_"))}
    env.update(
        MLOPS_HOME=str(servers["folder"] / "home"),
        MLOPS_ARTIFACT_URI=str(servers["folder"] / "platform"),
        MLFLOW_TRACKING_URI=servers["tracking"],
        MLFLOW_TRACKING_USERNAME=user,
        MLFLOW_TRACKING_PASSWORD=password or ACCOUNTS[user],
        PREFECT_API_URL=servers["prefect_api"],
    )
    if prefect:
        env["PREFECT_API_AUTH_STRING"] = PREFECT_AUTH
    return run_mlops(*args, env=env)


def registry_state(servers) -> dict:
    admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ACCOUNTS["admin"]}
    previous = {name: os.environ.get(name) for name in admin}
    os.environ.update(admin)
    try:
        return registry_snapshot(MlflowClient(servers["tracking"]), "digits")
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def trained(servers):
    """Two versions, registered by the training account through the authenticated APIs."""
    results = []
    for extra in ((), ("--force",)):
        done = mlops(servers, "trainer", "train", "--epochs", "3", "--json", *extra)
        assert done.returncode == 0, done.stderr[-3000:]
        results.append((json.loads(done.stdout.splitlines()[-1]), done))
    return results


def test_the_prefect_server_refuses_a_call_without_its_auth_string(servers):
    flows = f"{servers['prefect_api']}/flows/filter"
    assert status_of(flows, "POST") == 401
    assert status_of(flows, "POST", user=PREFECT_AUTH) == 200


def test_mlops_trains_through_both_authenticated_apis_and_no_secret_leaks(servers, trained):
    (first, done), (second, _) = trained
    assert (first["version"], second["version"]) == ("1", "2")
    secrets = [PREFECT_AUTH, *ACCOUNTS.values()]
    assert not [s for s in secrets if s in done.stdout + done.stderr]
    state = registry_state(servers)
    run_tags = json.dumps(state)
    assert not [s for s in secrets if s in run_tags]


def test_without_the_prefect_auth_string_train_fails_in_one_line(servers, trained):
    before = registry_state(servers)
    done = mlops(servers, "trainer", "train", "--epochs", "3", "--force", prefect=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: the Prefect API at {servers['prefect_api']} refused this client "
        "(401 Unauthorized): set PREFECT_API_AUTH_STRING to the server's user:password"
    )
    assert registry_state(servers) == before


@pytest.mark.parametrize(
    "command", [["promote", "digits", "--version", "1"], ["rollback", "digits"]]
)
def test_a_reviewer_cannot_move_an_alias_and_is_told_why(servers, trained, command):
    before = registry_state(servers)
    done = mlops(servers, "reviewer", *command)
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert "refused user 'reviewer'" in line and "needs EDIT on the registered model" in line
    assert "Traceback" not in done.stderr
    assert registry_state(servers) == before
    listed = mlops(servers, "reviewer", "models", "--json")  # what READ is for
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {row["version"] for row in json.loads(listed.stdout.splitlines()[-1])} == {"1", "2"}


def test_a_wrong_password_is_refused_in_one_line(servers, trained):
    done = mlops(servers, "reviewer", "models", password="not-the-password")
    assert done.returncode == 1
    assert "did not accept the credentials of 'reviewer'" in done.stderr


def test_a_reviewer_scores_a_batch_with_the_champion_through_both_apis(servers, trained):
    output = servers["folder"] / "home" / "scored.csv"
    done = mlops(servers, "reviewer", "predict", "--output", str(output), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    # READ keeps no records on the version: the batch is still checked, and the warning says so
    assert "monitor.* tags not recorded" in done.stderr and "'reviewer'" in done.stderr
    assert "detected" in json.loads(done.stdout.splitlines()[-1])["drift"]
    assert (
        json.loads(done.stdout.splitlines()[-1])["rows"]
        == 1797
        == len(output.read_text().splitlines()) - 1
    )
