"""infra/prefect.yaml deploys what `mlops serve` publishes: same flows, names and schedule."""

from __future__ import annotations

import importlib

import yaml

from flows.deployments import build_deployments
from tasks.settings import PROJECT_ROOT, Settings


def test_prefect_yaml_matches_the_served_deployments():
    spec = yaml.safe_load((PROJECT_ROOT / "infra" / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    served = {d.name: d for d in build_deployments(Settings())}
    assert set(deployments) == set(served) == {"retrain", "promote", "rollback", "predict"}
    for name, entry in deployments.items():
        path, function = entry["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, function)
        assert flow.name == served[name].flow_name
        assert entry["work_pool"]["name"] == "mlops"
    (schedule,) = deployments["retrain"]["schedules"]
    assert schedule["cron"] == Settings().retrain_cron == "0 3 * * 1"
