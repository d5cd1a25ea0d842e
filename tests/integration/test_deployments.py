"""`mlops up` and `mlops serve` as real processes; flow runs started through the Prefect API
(what the UI's Run button calls) change the MLflow registry as a user expects."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MLOPS, mlops_stack, run_mlops, wait_until
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DEPLOYMENTS = {
    "retrain": "training",
    "promote": "promote",
    "rollback": "rollback",
    "predict": "predict",
    "feedback": "feedback",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, free_port):
    """`mlops up` then `mlops serve` for one home, exactly as the README tells a user."""
    # No automations: a drifted batch scored here would start retraining runs in `mlops serve`,
    # which Ctrl-C then waits for (tests/integration/test_closed_loop.py tests them).
    folder = tmp_path_factory.mktemp("stack")
    with mlops_stack(folder, free_port, ("--no-automations",)) as started:
        yield started


@pytest.fixture(scope="module")
def prefect(stack):
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=stack["servers"]["prefect_api_url"]) as client:
        wait_until(lambda: len(client.read_deployments()) == 5, 300, "five deployments")
        yield client


@pytest.fixture(scope="module")
def registry(stack) -> MlflowClient:
    return MlflowClient(f"sqlite:///{stack['home'] / 'mlflow.db'}")


def deployment(prefect, name: str):
    return prefect.read_deployment_by_name(f"{DEPLOYMENTS[name]}/{name}")


def start(prefect, name: str, **parameters):
    return prefect.create_flow_run_from_deployment(
        deployment(prefect, name).id, parameters=parameters
    )


def finish(prefect, flow_run, seconds: float = 600):
    return wait_until(
        lambda: (run := prefect.read_flow_run(flow_run.id)).state.type.value in FINAL and run,
        seconds,
        f"flow run {flow_run.name}",
    )


def champion(registry) -> str:
    return str(registry.get_model_version_by_alias("digits", "champion").version)


def test_up_prints_both_addresses_and_serves_the_ui(stack):
    import urllib.request

    servers = stack["servers"]
    with urllib.request.urlopen(servers["prefect_ui_url"]) as page:
        assert b"<html" in page.read(300).lower()
    with urllib.request.urlopen(f"{servers['mlflow_url']}/health") as health:
        assert health.status == 200


def test_five_deployments_with_schedule_and_typed_parameters(prefect):
    retrain = deployment(prefect, "retrain")
    assert [s.schedule.cron for s in retrain.schedules] == ["0 3 * * 1"]
    schema = retrain.parameter_openapi_schema["properties"]
    assert schema["epochs"]["type"] == "integer" and schema["epochs"]["minimum"] == 1
    assert schema["epochs"]["default"] == 60 and "early stopping" in schema["epochs"]["description"]
    assert schema["drift_mode"]["enum"] == ["warn", "fail"]
    assert schema["require_approval"] == {
        **schema["require_approval"],
        "type": "boolean",
        "default": False,
    }
    promote = deployment(prefect, "promote").parameter_openapi_schema
    assert promote["required"] == ["version"]
    assert promote["properties"]["alias"]["enum"] == ["champion", "challenger"]
    rollback = deployment(prefect, "rollback").parameter_openapi_schema["properties"]
    assert rollback["model_name"]["default"] == "digits" and rollback["reason"]["description"]
    predict = deployment(prefect, "predict").parameter_openapi_schema["properties"]
    assert predict["model"]["default"] == "digits@champion"
    # A person runs feedback from the UI with the path of the labels that arrived.
    feedback = deployment(prefect, "feedback").parameter_openapi_schema
    assert feedback["required"] == ["labels_uri"]
    assert "label column" in feedback["properties"]["labels_uri"]["description"]
    assert feedback["properties"]["model"]["default"] == "digits@champion"


def test_retrain_started_through_the_api_registers_the_first_champion(prefect, registry):
    run = finish(prefect, start(prefect, "retrain", epochs=5))
    assert run.state.type.value == "COMPLETED", run.state.message
    assert champion(registry) == "1"
    assert registry.get_model_version("digits", "1").tags["flow_run_id"] == str(run.id)


def wait_paused(prefect, flow_run):
    return wait_until(
        lambda: prefect.read_flow_run(flow_run.id).state.type.value == "PAUSED",
        300,
        "the approval request",
    )


def test_approval_gate_approve_promotes(prefect, registry):
    flow_run = start(prefect, "retrain", epochs=5, require_approval=True, force=True)
    wait_paused(prefect, flow_run)
    assert champion(registry) == "1"  # nothing moves while a person decides
    prefect.resume_flow_run(flow_run.id, run_input={"approve": True, "reviewer": "qa"})
    run = finish(prefect, flow_run)
    assert run.state.type.value == "COMPLETED", run.state.message
    assert champion(registry) == "2"
    assert "approved by qa" in registry.get_model_version("digits", "2").tags["champion.reason"]


def test_approval_gate_reject_keeps_the_new_version_as_challenger(prefect, registry):
    flow_run = start(prefect, "retrain", epochs=5, require_approval=True, force=True)
    wait_paused(prefect, flow_run)
    prefect.resume_flow_run(
        flow_run.id, run_input={"approve": False, "reviewer": "qa", "comment": "not on a Friday"}
    )
    assert finish(prefect, flow_run).state.type.value == "COMPLETED"
    assert champion(registry) == "2"
    challenger = registry.get_model_version_by_alias("digits", "challenger")
    assert str(challenger.version) == "3"
    assert "rejected by qa (not on a Friday)" in challenger.tags["challenger.reason"]


def test_unanswered_approval_times_out_without_promoting(prefect, registry):
    before = len(registry.search_model_versions("name = 'digits'"))
    flow_run = start(
        prefect, "retrain", epochs=5, require_approval=True, approval_timeout_seconds=5, force=True
    )
    run = finish(prefect, flow_run)
    assert run.state.type.value == "FAILED"
    assert champion(registry) == "2"
    assert len(registry.search_model_versions("name = 'digits'")) == before


def test_rollback_then_promote_through_deployments_with_audit(prefect, registry):
    run = finish(
        prefect, start(prefect, "rollback", reason="bad predictions", requested_by="oncall")
    )
    assert run.state.type.value == "COMPLETED", run.state.message
    assert champion(registry) == "1"
    version = registry.get_model_version("digits", "1").tags
    assert (version["champion.by"], version["champion.previous_version"]) == ("oncall", "2")
    assert version["champion.reason"] == "rollback: bad predictions"
    assert registry.get_model_version("digits", "2").tags["champion.revoked_by"] == "oncall"
    run = finish(prefect, start(prefect, "promote", version="3", requested_by="lead"))
    assert run.state.type.value == "COMPLETED"
    assert champion(registry) == "3"


def test_promoting_a_missing_version_fails_and_changes_nothing(prefect, registry):
    before = dict(registry.get_registered_model("digits").aliases)
    run = finish(prefect, start(prefect, "promote", version="99"))
    assert run.state.type.value == "FAILED"
    assert "digits has no version 99" in run.state.message
    assert dict(registry.get_registered_model("digits").aliases) == before


def test_predict_deployment_writes_predictions_with_row_ids(prefect, stack, tmp_path):
    outside = tmp_path / "digits.parquet"  # not under the home, the worker's folder or artifacts
    run = finish(
        prefect, start(prefect, "predict", data_uri="builtin:digits", output_uri=str(outside))
    )
    assert run.state.type.value == "FAILED" and "outside the allowed roots" in run.state.message
    assert not outside.exists()

    out = stack["home"] / "scored" / "digits.parquet"
    run = finish(prefect, start(prefect, "predict", data_uri="builtin:digits", output_uri=str(out)))
    assert run.state.type.value == "COMPLETED", run.state.message
    import pandas as pd

    scored = pd.read_parquet(out)
    assert len(scored) == 1797 and list(scored["row_id"][:3]) == [0, 1, 2]
    assert scored["prediction"].between(0, 9).all()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_run_button_in_the_prefect_ui_retrains_and_registers(stack, prefect, registry, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    before = len(registry.search_model_versions("name = 'digits'"))
    retrain = deployment(prefect, "retrain")
    earlier = {run.id for run in prefect.read_flow_runs() if run.deployment_id == retrain.id}
    ui = stack["servers"]["prefect_ui_url"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{ui}/deployments")
        page.get_by_role("link", name="retrain").first.click()
        page.wait_for_url("**/deployments/deployment/**")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Quick run").click()
        (started,) = wait_until(
            lambda: [
                run
                for run in prefect.read_flow_runs()
                if run.deployment_id == retrain.id and run.id not in earlier
            ],
            60,
            "the flow run the Run button creates",
        )
        finish(prefect, started)
        page.goto(f"{ui}/runs/flow-run/{started.id}")
        expect(page.get_by_text("Completed").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "flow-run.png"))
        browser.close()
    versions = registry.search_model_versions("name = 'digits'")
    assert len(versions) == before + 1
    newest = max(versions, key=lambda v: int(v.version))
    flow_run = prefect.read_flow_run(newest.tags["flow_run_id"])
    assert flow_run.state.type.value == "COMPLETED" and flow_run.deployment_id is not None


STOPPED = {
    signal.SIGINT: (130, "error: aborted by an interrupt signal (Ctrl-C)"),
    signal.SIGTERM: (143, "error: stopped by a termination signal (SIGTERM)"),
}


def stops(process: subprocess.Popen, signum: int, output) -> None:
    """``process`` sent ``signum`` exits within 10 s, with 130 or 143 and the one line that
    says so in ``output()``, leaving none of its descendants (servers, flow runs) behind."""
    import psutil

    descendants = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signum)
    status, line = STOPPED[signum]
    assert process.wait(timeout=10) == status
    text = output()
    assert [got for got in text.splitlines() if got.startswith("error:")] == [line], text[-3000:]
    _, alive = psutil.wait_procs(descendants, timeout=5)
    assert not alive, [" ".join(p.cmdline()) for p in alive]


def test_ctrl_c_stops_serve_cleanly(stack):
    """After the module's flow runs: idle, it stops at once."""
    log = stack["home"] / "serve.log"
    stops(stack["serve"], signal.SIGINT, log.read_text)


def test_sigterm_to_serve_cancels_the_run_in_flight(stack, prefect, registry):
    """A retrain run in flight is cancelled (its process ends, its state is Cancelled) and
    registers nothing; `serve` stops within seconds."""
    log = stack["home"] / "serve-again.log"
    serve = subprocess.Popen(
        [MLOPS, "serve", "--no-automations"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=stack["env"],
        cwd=stack["home"],
    )
    try:
        versions = len(registry.search_model_versions("name = 'digits'"))
        flow_run = start(prefect, "retrain", epochs=5, force=True)
        wait_until(
            lambda: (
                prefect.read_flow_run(flow_run.id).state.type.value == "RUNNING"
                and "Task run" in log.read_text()
            ),
            300,
            "the retrain run at work under `mlops serve`",
        )
        stops(serve, signal.SIGTERM, log.read_text)
    finally:
        if serve.poll() is None:
            serve.kill()
    state = prefect.read_flow_run(flow_run.id).state
    assert state.type.value == "CANCELLED", state
    assert len(registry.search_model_versions("name = 'digits'")) == versions


def test_prefect_yaml_deploys_to_a_work_pool(stack, prefect):
    """The production path: `prefect deploy` of infra/prefect.yaml against a real server."""
    env = {**stack["env"], "PREFECT_API_URL": stack["servers"]["prefect_api_url"]}
    prefect_cli = str(Path(sys.executable).with_name("prefect"))
    root = Path(__file__).resolve().parents[2]
    for command in (
        [prefect_cli, "work-pool", "create", "mlops", "--type", "process"],
        [prefect_cli, "--no-prompt", "deploy", "--all", "--prefect-file", "infra/prefect.yaml"],
    ):
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name in DEPLOYMENTS:
        assert deployment(prefect, name).work_pool_name == "mlops"
    assert [s.schedule.cron for s in deployment(prefect, "retrain").schedules] == ["0 3 * * 1"]


def mlops(stack, *args: str, env: dict[str, str] | None = None, **options):
    return run_mlops(*args, env={**stack["env"], **(env or {})}, **options)


def test_commands_of_an_up_home_use_its_prefect_server(stack, prefect, registry, tmp_path):
    """From any directory, with relative paths: no PREFECT_API_URL set, the flow run is on
    the server `mlops up` started, and progress is on the command's own stderr."""
    from tasks.data.sources import load_frame

    load_frame("builtin:digits").to_csv(tmp_path / "digits.csv", index=False)
    done = mlops(
        stack, "train", "--data", "digits.csv", "--epochs", "5", "--force", "--json", cwd=tmp_path
    )  # --force: an earlier test of this module may have trained the same job
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    version = registry.get_model_version("digits", result["version"])
    assert version.run_id == result["run_id"]
    assert version.tags["data_sha256"] == result["data_sha256"]
    assert "Data passed suite 'digits'" in done.stderr
    flow_run = prefect.read_flow_run(version.tags["flow_run_id"])
    assert flow_run.state.is_completed()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_ctrl_c_or_kill_of_a_command_registers_nothing(stack, registry, signum):
    versions = len(registry.search_model_versions("name = 'digits'"))
    run = subprocess.Popen(
        [MLOPS, "train", "--epochs", "5", "--force", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**stack["env"], "MLOPS_FAILPOINTS": json.dumps({"before-register": "pause"})},
    )
    marker = stack["home"] / "failpoints" / "before-register"
    try:
        wait_until(marker.exists, 300, "the job reaching registration")
        run.send_signal(signum)
        status = run.wait(timeout=60)
        stderr = run.stderr.read()
    finally:
        marker.unlink(missing_ok=True)
        if run.poll() is None:
            run.kill()
    if signum in STOPPED:  # as Ctrl-C in the terminal, or `kill`: the job stops, the command fails
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert (status, errors) == (STOPPED[signum][0], [STOPPED[signum][1]]), stderr[-2000:]
    else:
        assert status == -signal.SIGKILL
    assert len(registry.search_model_versions("name = 'digits'")) == versions


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_predict_stopped_while_it_scores_writes_nothing(stack, digits, tmp_path, signum):
    """Partition by partition (200 rows each), stopped after the first: no output file."""
    import pandas as pd

    pd.concat([digits] * 20).to_csv(tmp_path / "many.csv", index=False)
    err = tmp_path / "predict.err"
    predict = subprocess.Popen(
        [MLOPS, "predict", "--data", "many.csv", "--output", "scored.csv"],
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
        env={**stack["env"], "MLOPS_PARTITION_ROWS": "200"},
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: "Partition 1 scored" in err.read_text(), 300, "the first partition")
        stops(predict, signum, err.read_text)
    finally:
        if predict.poll() is None:
            predict.kill()
    assert not (tmp_path / "scored.csv").exists()


def stops_up(up: subprocess.Popen, home: Path, signum: int) -> None:
    """`mlops up` sent ``signum`` stops the Prefect server and the MLflow UI, then itself."""
    import psutil

    servers = [psutil.Process(pid) for pid in json.loads((home / "up.json").read_text())["pids"]]
    up.send_signal(signum)
    status, line = STOPPED[signum]
    assert up.wait(timeout=10) == status
    assert line in up.stdout.read().splitlines()
    _, alive = psutil.wait_procs(servers, timeout=5)
    assert not alive
    assert not (home / "up.json").exists()


def test_ctrl_c_stops_up_with_its_servers(tmp_path, free_port):
    """A second home's `mlops up`, stopped by Ctrl-C once its servers answer."""
    home = tmp_path / "home"
    env = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")
    }
    up = subprocess.Popen(
        [MLOPS, "up", "--prefect-port", str(free_port()), "--mlflow-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "MLOPS_HOME": str(home)},
    )  # fmt: skip
    try:
        wait_until((home / "up.json").exists, 180, "mlops up")
        stops_up(up, home, signal.SIGINT)
    finally:
        if up.poll() is None:
            up.kill()


def test_sigterm_stops_up_with_its_servers(stack):
    """Last: the module's `mlops up` stopped by SIGTERM (as `kill`, Docker or systemd do)."""
    stops_up(stack["up"], stack["home"], signal.SIGTERM)
