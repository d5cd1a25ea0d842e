"""MLflow's scoring server as the serve check runs it: the canary request, the comparison of
answers, the server's own error for the user; and one real server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tasks.core import processes
from tasks.platform.settings import load_settings
from tasks.registry import packaging, serving


def test_the_canary_is_the_examples_rows_as_a_dataframe_split_at_full_precision():
    example = pd.DataFrame({"pixel": [1 / 3, 2.0], "colour": ["red", "blue"]}, index=[7, 9])
    body = json.loads(serving.request_body(example))
    assert body == {
        "dataframe_split": {"columns": ["pixel", "colour"], "data": [[1 / 3, "red"], [2.0, "blue"]]}
    }


def test_served_predictions_read_from_json_equal_the_in_process_ones_and_a_changed_label_not():
    expected = pd.DataFrame(
        {"prediction": [3, 8], "probability_3": [0.9, 0.2], "probability_8": [0.1, 0.8]}
    )
    answer = json.loads(expected.to_json(orient="records", double_precision=15))
    served = pd.DataFrame.from_records(answer)
    assert packaging.same_predictions(served, expected)
    assert not packaging.same_predictions(served.assign(prediction=[3, 3]), expected)
    assert not packaging.same_predictions(served.head(1), expected)
    regression = pd.DataFrame({"prediction": [1.5, 2.25]})
    assert packaging.same_predictions(regression + 1e-9, regression)
    assert not packaging.same_predictions(regression + 0.01, regression)


def test_the_user_sees_the_scoring_servers_exception_not_the_wrapper_that_says_it_exited():
    output = "\n".join(
        [
            "INFO mlflow.pyfunc.backend: === Running command 'exec uvicorn ...'",
            "Traceback (most recent call last):",
            '  File "classifier_model.py", line 52, in load_context',
            "_pickle.UnpicklingError: invalid load key, 'b'.",
            "Traceback (most recent call last):",
            '  File "mlflow/pyfunc/backend.py", line 326, in serve',
            "Exception: Command '['bash', '-c', 'exec uvicorn']' returned non zero return code. "
            "Return code = 1",
            "",
        ]
    )
    assert serving.server_error(output) == "_pickle.UnpicklingError: invalid load key, 'b'."
    assert serving.server_error("ERROR:    [Errno 98] address already in use\n") == (
        "ERROR:    [Errno 98] address already in use"
    )
    assert serving.server_error("") == "no output"


def test_a_refusal_shows_the_first_line_of_the_servers_message():
    message = "Failed to predict data '   pixel_0_0  ...'. \nError: Model is missing inputs ['a']."
    body = json.dumps({"error_code": "BAD_REQUEST", "message": message})
    assert serving.refusal(body.encode()) == "Model is missing inputs ['a']."
    assert serving.refusal(b"Request processing time exceeded limit") == (
        "Request processing time exceeded limit"
    )


def test_the_server_runs_this_environments_mlflow_on_loopback_with_its_bin_on_path(home):
    settings = load_settings()
    command = serving.serve_command("models:/digits/3", "127.0.0.1", 5123)
    assert command[0] == str(Path(sys.executable).with_name("mlflow"))
    assert command[1:5] == ["models", "serve", "-m", "models:/digits/3"]
    assert "--env-manager local" in " ".join(command)
    assert "--host 127.0.0.1 --port 5123" in " ".join(command)
    env = serving.server_env(settings)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["MLFLOW_TRACKING_URI"] == settings.resolved_tracking_uri


def test_a_server_started_for_a_check_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """Even by SIGKILL (the OOM killer): no scoring server is left behind on the machine."""
    pid_file = tmp_path / "child.pid"
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; from tasks.core import processes; "
            "child = subprocess.Popen(processes.ended_with_this_process(['sleep', '60'])); "
            f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)",
        ],
        cwd=Path(__file__).parents[3],
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived the process that started it"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # an exited child nobody reaped yet is a zombie
        return stat.read().split()[2] != "Z"


def test_a_stored_model_served_for_real_answers_its_canary_and_refuses_a_wrong_request(
    stored_model,
):
    settings, logged = stored_model
    checked = serving.check(settings, logged, settings.serve_check_timeout)
    assert checked.tags()["serve_check"] == "true"
    assert 0 < float(checked.tags()["serve_check_latency_ms"]) < 30_000
    with serving.scoring_server(settings, logged.uri, 120) as url:
        with pytest.raises(serving.ServingError, match=r"HTTP 400.*pixel_3_3"):
            serving.canary(url, logged.example.drop(columns="pixel_3_3"), 30)
        port = int(url.rsplit(":", 1)[1])
    assert not processes.answers(f"http://127.0.0.1:{port}/ping")  # stopped with the block


def test_a_server_started_before_the_model_exists_serves_it_and_ends_with_the_block(
    stored_model,
):
    """The serve check's server imports while the job trains; handed the model, it answers
    the canary as `mlflow models serve` does; unused, it ends with the job all the same."""
    settings, logged = stored_model
    settings = settings.model_copy(update={"serve_check": True})  # the tests' default is off
    with serving.warmed(settings) as warm:
        checked = serving.check(settings, logged, settings.serve_check_timeout, warm=warm)
        assert warm.process.stdin.closed  # it was handed the model: no second server started
    assert checked.tags()["serve_check"] == "true"
    assert warm.process.poll() is not None
    with serving.warmed(settings) as unused:
        pass
    assert unused.process.poll() is not None
