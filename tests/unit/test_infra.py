"""infra/prefect.yaml deploys what `mlops serve` publishes: same flows, names and schedule."""

from __future__ import annotations

import importlib
import os

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


INFRA = PROJECT_ROOT / "infra"


def compose() -> dict:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())


def placeholders(value: str) -> str:
    """${NAME:?...} / ${NAME:-default} as compose would fill them, with stand-in secrets."""
    import re

    return re.sub(
        r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}",
        lambda m: m.group(2) if m.group(2) is not None else f"<{m.group(1)}>",
        value,
    )


def test_compose_stack_has_its_services_and_ports():
    services = compose()["services"]
    assert set(services) == {
        "postgres",
        "minio",
        "minio-bucket",
        "mlflow",
        "prefect-server",
        "prefect-worker",
        "prefect-worker-gpu",
        "dask-scheduler",
        "dask-worker",
    }
    assert "5000:5000" in services["mlflow"]["ports"]
    assert "4200:4200" in services["prefect-server"]["ports"]
    assert "9000:9000" in services["minio"]["ports"]
    assert "prefect" in (INFRA / "postgres-init.sql").read_text()
    database = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert database.startswith("postgresql+asyncpg://") and database.endswith(
        "@postgres:5432/prefect"
    )
    gpu = services["prefect-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["prefect-worker-gpu"]["profiles"] == ["gpu"]


def test_worker_environment_drives_the_same_settings_as_the_embedded_default(monkeypatch):
    services = compose()["services"]
    environment = services["prefect-worker"]["environment"]
    assert environment == services["prefect-worker-gpu"]["environment"]
    for name in list(os.environ):
        if name.startswith(("MLOPS_", "MLFLOW_", "AWS_", "PREFECT_API_URL")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, placeholders(str(value)))
    settings = Settings()
    assert settings.resolved_tracking_uri == "http://mlflow:5000"
    assert settings.resolved_artifact_uri == "s3://mlops/platform" and settings.artifacts_on_s3
    assert settings.s3_endpoint_url == "http://minio:9000"
    assert settings.prefect_api_url == "http://prefect-server:4200/api"
    assert settings.retrain_cron == "0 3 * * 1"
    # Every MLOPS_* variable the stack sets is one the platform reads.
    fields = {f"MLOPS_{name.upper()}" for name in Settings.model_fields}
    assert {n for n in environment if n.startswith("MLOPS_")} <= fields
    # Secrets come from the operator's env file, never from the repository.
    for name in ("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
        assert str(environment[name]).startswith("${") and ":?" in str(environment[name])


def test_worker_image_installs_the_platform_and_serves_the_deployed_pool():
    dockerfile = (INFRA / "worker.Dockerfile").read_text()
    pool = yaml.safe_load((INFRA / "prefect.yaml").read_text())["definitions"]["work_pool"]["name"]
    assert "pip install --no-cache-dir ." in dockerfile
    assert "COPY expectations ./expectations" in dockerfile
    assert "MLOPS_SUITES_DIR=/opt/mlops/expectations" in dockerfile
    assert f'"--pool", "{pool}"' in dockerfile


def test_mlflow_server_gets_every_variable_its_start_command_requires():
    import re

    start = (PROJECT_ROOT / "mlflow" / "start.sh").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", start))
    environment = compose()["services"]["mlflow"]["environment"]
    assert required <= set(environment)
    assert environment["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert environment["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://mlops/")
    assert "--app-name basic-auth" in start and "--serve-artifacts" in start
    assert not list((PROJECT_ROOT / "mlflow").glob("*.py"))


def test_compose_dask_cluster_is_where_the_workers_send_sweep_tasks(monkeypatch):
    services = compose()["services"]
    address = services["prefect-worker"]["environment"]["MLOPS_DASK_ADDRESS"]
    monkeypatch.setenv("MLOPS_DASK_ADDRESS", address)
    assert Settings().dask_address == "tcp://dask-scheduler:8786"
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert "--port 8786" in scheduler["command"]
    assert worker["command"].startswith(f"dask worker {address} --nthreads 1")
    assert worker["deploy"]["replicas"] == 2
    for service in (scheduler, worker):  # both unpickle the sweep's tasks: loaded at start
        assert service["command"].endswith("--preload flows.sweep")
    assert "--preload keras" in worker["command"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    for service in (scheduler, worker):  # the platform's code, importable by pickled tasks
        assert service["build"] == services["prefect-worker"]["build"]


def kubernetes() -> dict[str, dict]:
    documents = yaml.safe_load_all((INFRA / "k8s" / "stack.yaml").read_text())
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def test_kubernetes_dask_workers_reach_the_scheduler_service_the_flows_are_given():
    objects = kubernetes()
    environment = objects["ConfigMap/mlops-env"]["data"]
    fields = {f"MLOPS_{name.upper()}" for name in Settings.model_fields}
    assert {n for n in environment if n.startswith("MLOPS_")} <= fields
    service = objects["Service/dask-scheduler"]
    port = service["spec"]["ports"][0]["port"]
    host = f"{service['metadata']['name']}.mlops.svc.cluster.local"  # applied with -n mlops
    assert environment["MLOPS_DASK_ADDRESS"] == f"tcp://{host}:{port}"
    (scheduler,) = objects["Deployment/dask-scheduler"]["spec"]["template"]["spec"]["containers"]
    assert str(port) in scheduler["command"]
    workers = objects["Deployment/dask-worker"]["spec"]
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["command"][:3] == ["dask", "worker", environment["MLOPS_DASK_ADDRESS"]]
    assert worker["command"][3:5] == ["--nthreads", "1"] and workers["replicas"] == 2
    assert worker["envFrom"] == [{"configMapRef": {"name": "mlops-env"}}]
    # The same worker environment as compose (threads per core, malloc thresholds).
    compose_env = compose()["services"]["dask-worker"]["environment"]
    assert {e["name"]: e["value"] for e in worker["env"]} == {
        name: value for name, value in compose_env.items() if name != "PREFECT_API_URL"
    }
    for container in (scheduler, worker):
        assert container["command"][-2:] == ["--preload", "flows.sweep"]
    assert worker["command"][-4:-2] == ["--preload", "keras"]


def test_kubernetes_work_pool_runs_flows_in_the_platform_image_with_the_stack_environment():
    import json
    import re

    values = yaml.safe_load((INFRA / "k8s" / "prefect-worker-values.yaml").read_text())
    deployed = yaml.safe_load((INFRA / "prefect.yaml").read_text())["definitions"]["work_pool"]
    assert values["worker"]["config"] == {"workPool": deployed["name"], "type": "kubernetes"}
    template = json.loads((INFRA / "k8s" / "base-job-template.json").read_text())
    variables = template["variables"]["properties"]
    used = set(re.findall(r"\{\{ (\w+) \}\}", json.dumps(template["job_configuration"])))
    assert used <= set(variables)  # every placeholder is a variable the pool declares
    manifest = template["job_configuration"]["job_manifest"]
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "mlops-env"}},
        {"secretRef": {"name": "mlops-secrets"}},
    ]
    dask = kubernetes()["Deployment/dask-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert variables["image"]["default"] == dask["image"]  # flows and Dask run the same code


def test_an_unreachable_dask_scheduler_is_named_in_one_line_within_seconds(free_port):
    import time

    import pytest

    from flows.runners import DaskUnreachableError, check_scheduler

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(DaskUnreachableError, match=f"cannot reach the Dask scheduler at {address}"):
        check_scheduler(address)
    assert time.monotonic() - started < 5
    with pytest.raises(DaskUnreachableError, match="use tcp://host:port"):
        check_scheduler("tcp://scheduler-without-port")
