"""A team's models declared in mlops.yaml, served by `mlops serve` on a real Prefect server:
a retraining deployment per model, with its schedules, parameters and automation."""

from __future__ import annotations

import json

import pytest
from conftest import mlops_stack, run_mlops, wait_until
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

PROJECT = """\
# Two models of a team: the digits, and a second one on its own schedules.
models:
  alpha:
    data: builtin:digits
    target: target
    suite: digits
    epochs: 3
    schedule: "0 4 * * *"
    candidates: [logistic_regression]
    retrain_on_drift: {enabled: true, cooldown: 600}
  beta:
    data: builtin:breast_cancer
    target: target
    suite: breast_cancer
    schedule:
      - {cron: "30 2 * * *", timezone: Europe/Paris}
      - {cron: "0 12 * * 6"}
    candidates: [gradient_boosting]
    retrain_on_drift: false
"""
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, free_port):
    folder = tmp_path_factory.mktemp("project")
    project = folder / "mlops.yaml"
    project.write_text(PROJECT)
    with mlops_stack(folder / "home", free_port, MLOPS_PROJECT=str(project)) as started:
        yield {**started, "project": project}


@pytest.fixture(scope="module")
def prefect(stack):
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=stack["servers"]["prefect_api_url"]) as client:
        wait_until(lambda: len(client.read_deployments()) == 6, 300, "six deployments")
        yield client


def schedules(prefect, name: str) -> list[tuple[str, str | None]]:
    found = prefect.read_deployment_by_name(f"training/retrain-{name}").schedules
    return sorted((s.schedule.cron, s.schedule.timezone) for s in found)


def drift_automations(prefect) -> list[str]:
    return sorted(a.name for a in prefect.read_automations() if "retrain-on-drift" in a.name)


def test_a_retraining_deployment_per_declared_model(prefect):
    names = sorted(d.name for d in prefect.read_deployments())
    assert names == ["feedback", "predict", "promote", "retrain-alpha", "retrain-beta", "rollback"]
    assert schedules(prefect, "alpha") == [("0 4 * * *", "UTC")]
    assert schedules(prefect, "beta") == [("0 12 * * 6", "UTC"), ("30 2 * * *", "Europe/Paris")]
    alpha = prefect.read_deployment_by_name("training/retrain-alpha")
    assert alpha.parameters["model_name"] == "alpha" and alpha.parameters["epochs"] == 3
    assert alpha.parameters["candidates"][0]["entry"] == "logistic_regression"
    assert alpha.parameters["suite"].endswith("expectations/digits.json")
    # The UI's form: the declared values are the defaults of typed fields.
    assert alpha.parameter_openapi_schema["properties"]["candidates"]
    # Drift retrains alpha through its own deployment; beta only reports.
    assert drift_automations(prefect) == ["mlops-retrain-on-drift-alpha"]
    (automation,) = prefect.read_automations_by_name("mlops-retrain-on-drift-alpha")
    assert automation.actions[0].deployment_id == alpha.id
    assert automation.trigger.within.total_seconds() == 600


def test_running_one_models_deployment_registers_that_model_only(stack, prefect):
    deployment = prefect.read_deployment_by_name("training/retrain-alpha")
    started = prefect.create_flow_run_from_deployment(deployment.id)
    run = wait_until(
        lambda: (r := prefect.read_flow_run(started.id)).state.type.value in FINAL and r,
        600,
        "the retrain-alpha run",
    )
    assert run.state.type.value == "COMPLETED", run.state.message
    registry = MlflowClient(f"sqlite:///{stack['home'] / 'mlflow.db'}")
    assert [m.name for m in registry.search_registered_models()] == ["alpha"]
    version = registry.get_model_version_by_alias("alpha", "champion")
    assert version.tags["model_family"] == "logistic_regression"
    listed = run_mlops("models", "--json", env=stack["env"])
    rows = {row["model"]: row for row in json.loads(listed.stdout.splitlines()[-1])}
    assert rows["beta"]["version"] is None and rows["beta"]["declared"] is True


def test_publishing_again_duplicates_no_schedule_or_automation(stack, prefect):
    """`mlops deploy` publishes the same deployments (now on a work pool): the slugged
    schedules are updated in place, and each automation stays one."""
    env = {**stack["env"], "PREFECT_API_URL": stack["servers"]["prefect_api_url"]}
    done = run_mlops("deploy", "--pool", "team", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Deployed training/retrain-beta on work pool team" in done.stdout
    assert prefect.read_deployment_by_name("training/retrain-beta").work_pool_name == "team"
    assert schedules(prefect, "alpha") == [("0 4 * * *", "UTC")]
    assert len(schedules(prefect, "beta")) == 2
    assert drift_automations(prefect) == ["mlops-retrain-on-drift-alpha"]
