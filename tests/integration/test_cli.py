"""The `mlops` command as a user runs it: a real process, its exit status, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import run_mlops


def mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_mlops(*args, env={**os.environ, **(env or {})})


def test_help_explains_every_command_without_loading_the_heavy_libraries():
    done = mlops("--help")
    assert done.returncode == 0
    for command in ("train", "validate", "models"):
        assert command in done.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, flows.cli; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(probe.stdout.replace("'", '"')))
    assert not loaded & {
        "tensorflow",
        "keras",
        "mlflow",
        "prefect",
        "great_expectations",
        "sklearn",
    }


def test_train_help_lists_the_options_of_the_interface():
    done = mlops("train", "--help")
    for option in (
        "--data",
        "--target",
        "--suite",
        "--model-name",
        "--epochs",
        "--force",
        "--cv",
        "--sweep",
        "--json",
    ):
        assert option in done.stdout


def test_validate_passes_good_data(home):
    done = mlops("validate", "--data", "builtin:digits", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["success"] is True and report["rows"] == 1797


@pytest.mark.parametrize("kind", ["semicolons", "nulls", "out_of_range", "text_in_numeric"])
def test_validate_rejects_bad_data_with_one_clear_message(home, bad_files, kind):
    path, words = bad_files[kind]
    done = mlops("validate", "--data", str(path))
    assert done.returncode == 1
    assert "error: " in done.stderr and words in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_json_lists_every_failure_of_rejected_data(home):
    done = mlops("validate", "--data", "builtin:breast_cancer", "--suite", "digits", "--json")
    assert done.returncode == 1 and "more (every one: `mlops validate --json`" in done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The column set, each of the 64 missing pixels, and labels 2-9 missing from the target.
    assert report["success"] is False and len(report["failures"]) == 66


def test_unknown_suite_is_named(home):
    done = mlops("validate", "--suite", "iris")
    assert done.returncode == 1
    assert "no suite named 'iris'" in done.stderr and "Traceback" not in done.stderr


def test_bad_epochs_are_refused_before_any_work(home):
    done = mlops("train", "--epochs", "0")
    assert done.returncode == 2 and "--epochs" in done.stderr
    assert not (home / "mlflow.db").exists()


@pytest.mark.parametrize(
    "option, words",
    [
        (("--data", "ftp://host/d.csv"), "unsupported URI scheme 'ftp://'"),
        (("--model-name", "a b"), "invalid model name 'a b'"),
        (("--suite", "nope"), "no suite named 'nope'"),
    ],
)
def test_malformed_training_inputs_are_refused_before_any_flow_starts(home, option, words):
    done = mlops("train", *option)
    assert done.returncode == 1 and words in done.stderr
    # No flow run, so no Prefect start-up (no server on PREFECT_API_URL here) and no database.
    assert "Starting temporary server" not in done.stderr
    assert not list(home.rglob("*.db"))  # neither MLflow's store nor Prefect's database


@pytest.mark.slow
def test_train_json_then_models_on_another_dataset(module_home, prefect_api):
    env = {"PREFECT_API_URL": prefect_api}
    args = ["--data", "builtin:breast_cancer", "--model-name", "breast_cancer", "--epochs", "10"]
    done = mlops("train", *args, "--cv", "--json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    cv = result["cross_validation"]
    assert 0.85 < cv["cv_accuracy_mean"] <= 1.0 and 0 <= cv["cv_accuracy_std"] < 0.1
    for key in ("model", "version", "run_id", "promoted", "champion_version", "data_sha256"):
        assert key in result
    assert (result["model"], result["version"], result["champion_version"]) == (
        "breast_cancer",
        "1",
        "1",
    )
    assert set(result["metrics"]) == {
        "test_accuracy",
        "test_f1_macro",
        "test_precision_macro",
        "test_recall_macro",
        "test_roc_auc_ovr",
    }
    assert result["metrics"]["test_accuracy"] > 0.9
    assert result["drift"]["detected"] is False and result["skipped"] is False
    listed = mlops("models", "breast_cancer", "--json")
    (row,) = json.loads(listed.stdout.strip().splitlines()[-1])
    assert row["aliases"] == ["champion"] and row["version"] == "1"
    # The command leaves without Python's module teardown: its last logs still reach the UI.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    messages = [log.message for log in logs]
    assert any("Registered breast_cancer version 1" in message for message in messages)
    assert "Finished in state Completed()" in messages[-1]


@pytest.mark.slow
def test_train_on_rejected_data_fails_cleanly_and_registers_nothing(
    module_home, prefect_api, bad_files
):
    path, words = bad_files["out_of_range"]
    done = mlops(
        "train",
        "--data",
        str(path),
        "--model-name",
        "rejected",
        "--suite",
        "digits",
        env={"PREFECT_API_URL": prefect_api},
    )
    assert done.returncode == 1
    assert words in done.stderr and "2 of 1797 rows above 16" in done.stderr
    assert "Traceback" not in done.stderr
    listed = mlops("models", "rejected", "--json")
    assert listed.returncode == 1
    assert "no registered model named 'rejected'" in listed.stderr


def test_suite_suggest_then_validate_round_trip(home, tmp_path, digits):
    out = tmp_path / "contracts" / "bc.json"
    done = mlops(
        "suite", "suggest", "--data", "builtin:breast_cancer", "--name", "bc", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert f"Wrote {out}" in done.stdout
    suite = json.loads(out.read_text())
    assert suite["name"] == "bc" and len(suite["expectations"]) > 60
    assert mlops("validate", "--data", "builtin:breast_cancer", "--suite", str(out)).returncode == 0
    refused = mlops("validate", "--data", "builtin:digits", "--suite", str(out))
    assert refused.returncode == 1 and "expect_table_columns_to_match_set" in refused.stderr


def test_suite_suggest_needs_data_and_name(home):
    done = mlops("suite", "suggest", "--name", "x")
    assert done.returncode == 2 and "--data" in done.stderr
