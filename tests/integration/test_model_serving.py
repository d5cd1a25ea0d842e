"""Serving as a user meets it: every version answers a canary from MLflow's own scoring server
before it registers (its latency on the version), a version the server cannot load is not
registered and moves no alias, and `mlops serve-model` answers a real HTTP client."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from contextlib import suppress
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import MLOPS, run_mlops, wait_until

from tasks.core.processes import answers
from tasks.platform.settings import load_settings
from tasks.registry import packaging

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(module_home, prefect_api) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": prefect_api, "MLOPS_SERVE_CHECK": "true"}


@pytest.fixture(scope="module")
def trained(env) -> dict:
    done = run_mlops("train", "--epochs", "3", "--json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions(env) -> list[dict]:
    done = run_mlops("models", "digits", "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_registered_version_records_the_canary_its_scoring_server_answered(env, trained):
    (row,) = [r for r in versions(env) if r["version"] == trained["version"]]
    assert row["aliases"] == ["champion"]
    assert row["tags"]["serve_check"] == "true"
    assert 0 < float(row["tags"]["serve_check_latency_ms"]) < 120_000


def test_a_version_its_scoring_server_cannot_load_is_not_registered(env, trained):
    before = versions(env)
    broken = {**env, "MLOPS_FAILPOINTS": json.dumps({"serve-check": "break"})}
    done = run_mlops("train", "--epochs", "3", "--force", "--json", env=broken)
    assert done.returncode == 1
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    # The server's own reason (its exception), in one line, without a traceback.
    assert "MLflow's scoring server could not serve" in error, done.stderr[-3000:]
    assert re.search(r"\(exit status \d+\): [\w.]+(Error|Exception)\b", error), error
    assert error.endswith("nothing registered")
    assert "Traceback" not in done.stderr
    assert versions(env) == before  # no new version, no alias moved, no tag changed


def serve_model(env, port: int, folder) -> tuple[subprocess.Popen, Path]:
    """`mlops serve-model digits` on ``port``: the process, and the file of its stderr."""
    err = folder / "serve-model.err"
    server = subprocess.Popen(
        [MLOPS, "serve-model", "digits", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
        start_new_session=True,
    )
    return server, err


def stopped_by(server: subprocess.Popen, signum: int, err: Path, url: str) -> None:
    """The command alone is sent ``signum``: it exits 130 or 143 within 10 s, says so in one
    line, and its scoring server (uvicorn and all) is gone."""
    import psutil

    descendants = psutil.Process(server.pid).children(recursive=True)
    assert descendants  # `mlflow models serve` and its uvicorn
    server.send_signal(signum)
    assert server.wait(timeout=10) == 128 + signum
    errors = [line for line in err.read_text().splitlines() if line.startswith("error:")]
    words = "interrupt signal (Ctrl-C)" if signum == signal.SIGINT else "termination signal"
    assert len(errors) == 1 and words in errors[0], errors
    _, alive = psutil.wait_procs(descendants, timeout=5)
    assert not alive and not answers(f"{url}/ping")


def test_serve_model_answers_a_real_http_client_as_the_model_predicts_in_process(
    env, trained, digits, free_port, wait_for, tmp_path
):
    port = free_port()
    server, err = serve_model(env, port, tmp_path)
    try:
        serving_line, curl_line = server.stdout.readline(), server.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert f"Serving digits v{trained['version']} (champion) at {url}" in serving_line
        wait_for(lambda: answers(f"{url}/ping"), 180, "`mlops serve-model` to load the model")

        rows = digits.drop(columns="target").sample(40, random_state=3).astype(float)
        body = {"dataframe_split": rows.to_dict(orient="split")}
        served = _post(f"{url}/invocations", json.dumps(body).encode())["predictions"]
        mlflow.set_tracking_uri(load_settings().resolved_tracking_uri)
        in_process = mlflow.pyfunc.load_model("models:/digits@champion").predict(rows)
        assert [r["prediction"] for r in served] == list(in_process["prediction"])
        _, probabilities = packaging.class_probabilities(in_process)
        served_probabilities = [[v for k, v in r.items() if k != "prediction"] for r in served]
        np.testing.assert_allclose(served_probabilities, probabilities, atol=1e-6)

        # The printed example is a request the server answers, one prediction.
        example = re.search(r"-d '(.+)'$", curl_line.strip()).group(1)
        assert len(_post(f"{url}/invocations", example.encode())["predictions"]) == 1
        stopped_by(server, signal.SIGINT, err, url)  # Ctrl-C
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_sigterm_stops_serve_model_with_its_scoring_server(env, trained, free_port, tmp_path):
    port = free_port()
    server, err = serve_model(env, port, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/ping"), 180, "`mlops serve-model` to load the model")
        stopped_by(server, signal.SIGTERM, err, url)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_serve_model_of_an_unknown_model_or_alias_says_so_in_one_line(env, trained):
    unknown = {
        "nope": "error: no registered model named 'nope'",
        "digits@nope": "error: no version of digits holds the alias 'nope'",
    }
    for model, words in unknown.items():
        done = run_mlops("serve-model", model, env=env)
        assert done.returncode == 1
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(words), done.stderr[-2000:]


def _post(url: str, body: bytes) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)
