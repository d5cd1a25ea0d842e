"""The closed loop against a real Prefect server and `mlops serve`: a drifted batch through
`mlops predict` retrains by itself (once per cooldown), a failed run posts to a webhook, and
the automations `mlops serve` creates are neither duplicated nor made when told not to."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from conftest import MLOPS, mlops_stack, run_mlops, wait_until
from mlflow import MlflowClient

from tasks.platform import events

pytestmark = pytest.mark.slow

TOKEN = "hook-token-7f3a"  # a secret in MLOPS_NOTIFY_URL: it must reach no log


@pytest.fixture(scope="module")
def webhook(free_port):
    """A webhook receiver on loopback: the bodies it was posted."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{port}/hook?token={TOKEN}", "received": received}
    server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, free_port, webhook):
    with mlops_stack(
        tmp_path_factory.mktemp("loop"),
        free_port,
        MLOPS_NOTIFY_URL=webhook["url"],
        MLOPS_RETRAIN_COOLDOWN="3600",
    ) as started:
        yield started


@pytest.fixture(scope="module")
def prefect(stack):
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=stack["servers"]["prefect_api_url"]) as client:
        wait_until(lambda: len(client.read_automations()) == 2, 300, "two automations")
        yield client


@pytest.fixture(scope="module")
def champion(stack, prefect) -> str:
    trained = run_mlops("train", "--epochs", "2", "--json", env=stack["env"])
    assert trained.returncode == 0, trained.stderr
    return json.loads(trained.stdout.splitlines()[-1])["version"]


def shifted_batch(path) -> str:
    """Digits moved one pixel to the right: every value valid, the distribution not."""
    from tasks.data.sources import load_frame

    pixels = load_frame("builtin:digits").drop(columns="target")
    images = pixels.to_numpy().reshape(-1, 8, 8)
    moved = np.roll(images, 1, axis=2)
    moved[:, :, 0] = 0
    pd.DataFrame(moved.reshape(-1, 64), columns=pixels.columns).to_csv(path, index=False)
    return str(path)


def retrain_runs(prefect) -> list:
    """Flow runs of `retrain` that drift started (approval required; not its cron's)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    retrain = prefect.read_deployment_by_name(events.RETRAIN_DEPLOYMENT)
    runs = prefect.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[retrain.id]))
    )
    return [run for run in runs if run.parameters.get("require_approval") is True]


def predict(stack, batch: str):
    out = stack["home"] / "scored.csv"
    result = run_mlops("predict", "--data", batch, "--output", str(out), "--json", env=stack["env"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_a_drifted_batch_retrains_by_itself_once_per_cooldown(stack, prefect, champion, tmp_path):
    import time

    from prefect.states import Cancelled

    batch = shifted_batch(tmp_path / "shifted.csv")
    result, stderr = predict(stack, batch)
    assert result["drift"]["detected"] and result["prediction_drift"]["detected"]
    assert "no enabled" not in stderr  # the automation is there: no warning that none can run
    (run,) = wait_until(lambda: retrain_runs(prefect), 300, "a retrain run the automation starts")
    assert run.parameters == {
        "model_name": "digits",
        "data_uri": "builtin:digits",
        "target": "target",
        "require_approval": True,
    }
    prefect.set_flow_run_state(run.id, Cancelled(message="test: enough to see it"), force=True)
    tags = (
        MlflowClient(f"sqlite:///{stack['home'] / 'mlflow.db'}")
        .get_model_version("digits", champion)
        .tags
    )
    assert tags["monitor.last_drift_detected"] == "true" and tags["monitor.last_rows"] == "1797"

    result, _ = predict(stack, batch)  # drifted again, within the cooldown
    assert result["drift"]["detected"]
    time.sleep(15)  # the first one's automation acted within seconds
    assert [r.id for r in retrain_runs(prefect)] == [run.id]


def test_a_failed_training_run_posts_to_the_webhook(stack, prefect, webhook, tmp_path):
    missing = tmp_path / "missing.csv"
    failed = run_mlops("train", "--data", str(missing), "--epochs", "1", env=stack["env"])
    assert failed.returncode != 0
    (posted,) = wait_until(
        lambda: [p for p in webhook["received"] if p["body"]["flow"] == "training"],
        120,
        "the failure webhook",
    )
    body = posted["body"]
    assert body["state"] == "Failed" and "missing.csv" in body["message"]
    assert body["run"] in body["text"] and "training" in body["text"]
    assert posted["path"] == f"/hook?token={TOKEN}"
    assert TOKEN not in (stack["home"] / "serve.log").read_text()


def serve_again(stack, *options: str, until: str) -> str:
    """A second `mlops serve` (options given), stopped once its log shows ``until``."""
    log = stack["home"] / f"serve-again{''.join(options)}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [MLOPS, "serve", *options], stdout=output, stderr=subprocess.STDOUT, env=stack["env"]
        )
    try:
        wait_until(lambda: until in log.read_text(), 180, f"{until!r} in the log of mlops serve")
    finally:
        process.terminate()
        process.wait(timeout=30)
    return log.read_text()


def test_serving_again_updates_the_automations_in_place(stack, prefect):
    before = {a.name: a.id for a in prefect.read_automations()}
    assert set(before) == {events.RETRAIN_ON_DRIFT, events.NOTIFY_ON_FAILURE}
    serve_again(stack, until=f"Automation {events.NOTIFY_ON_FAILURE!r} updated")
    assert {a.name: a.id for a in prefect.read_automations()} == before


def test_no_automations_creates_none(stack, prefect):
    for automation in prefect.read_automations():
        prefect.delete_automation(automation.id)
    serve_again(stack, "--no-automations", until="being served")
    assert prefect.read_automations() == []
