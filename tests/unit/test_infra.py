"""infra/prefect.yaml deploys what `mlops serve` publishes: same flows, names and schedule."""

from __future__ import annotations

import importlib
import os

import yaml

from flows.deployments import build_deployments
from tasks.platform.settings import PROJECT_ROOT, Settings


def test_prefect_yaml_matches_the_served_deployments():
    spec = yaml.safe_load((PROJECT_ROOT / "infra" / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    served = {d.name: d for d in build_deployments(Settings())}
    assert (
        set(deployments) == set(served) == {"retrain", "promote", "rollback", "predict", "feedback"}
    )
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
        "mlflow-accounts",
        "prefect-server",
        "prefect-worker",
        "prefect-worker-gpu",
        "dask-scheduler",
        "dask-worker",
    }
    assert "127.0.0.1:5000:5000" in services["mlflow"]["ports"]
    assert "127.0.0.1:4200:4200" in services["prefect-server"]["ports"]
    assert "127.0.0.1:9000:9000" in services["minio"]["ports"]
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
    for name in ("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "PREFECT_API_AUTH_STRING"):
        assert str(environment[name]).startswith("${") and ":?" in str(environment[name])
    # Flows log and register as the training account, never as MLflow's admin.
    assert (
        environment["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_TRAINING_USERNAME:?set in stack.env}"
    )


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
    assert Settings().dask_address == "tls://dask-scheduler:8786"
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
    assert environment["MLOPS_DASK_ADDRESS"] == f"tls://{host}:{port}"
    (scheduler,) = objects["Deployment/dask-scheduler"]["spec"]["template"]["spec"]["containers"]
    assert str(port) in scheduler["command"]
    workers = objects["Deployment/dask-worker"]["spec"]
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["command"][:3] == ["dask", "worker", environment["MLOPS_DASK_ADDRESS"]]
    assert worker["command"][3:5] == ["--nthreads", "1"] and workers["replicas"] == 2
    assert worker["envFrom"] == [{"configMapRef": {"name": "mlops-env"}}]
    # The same worker environment as compose (threads per core, malloc thresholds).
    compose_env = compose()["services"]["dask-worker"]["environment"]
    assert {e["name"]: e["value"] for e in worker["env"] if "value" in e} == {
        name: value for name, value in compose_env.items() if not name.startswith("PREFECT_API")
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


# Security of the stack (docs/security.md): what is published, who may call what, with which
# secret, and how the Dask cluster authenticates its peers.

CERTS = "/etc/dask/certs"


def published(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def stack_env_example() -> dict[str, str]:
    lines = (INFRA / "stack.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_only_what_people_open_is_published_and_on_loopback_only():
    services = compose()["services"]
    for name, service in services.items():
        for port in published(service):  # reachable from this host, never from the network
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert {name: published(s) for name, s in services.items() if published(s)} == {
        "prefect-server": ["127.0.0.1:4200:4200"],  # UI and API
        "mlflow": ["127.0.0.1:5000:5000"],
        # `mlops` on this host reads and writes the bucket itself (MLFLOW_S3_ENDPOINT_URL)
        "minio": ["127.0.0.1:9000:9000", "127.0.0.1:9001:9001"],
    }
    # PostgreSQL and the Dask scheduler: the compose network only.
    for name in ("postgres", "dask-scheduler", "dask-worker"):
        assert "ports" not in services[name]
    for document in kubernetes().values():  # nothing leaves the cluster from these manifests
        spec = document.get("spec", {})
        assert spec.get("type", "ClusterIP") == "ClusterIP"
        pod = spec.get("template", {}).get("spec", {})
        assert not pod.get("hostNetwork")
        for container in pod.get("containers", []):
            assert all("hostPort" not in port for port in container.get("ports", []))


def test_the_prefect_api_requires_basic_auth_and_every_client_sends_the_same_string():
    services = compose()["services"]
    secret = "${PREFECT_AUTH_STRING:?set in stack.env}"  # from stack.env, no default
    assert services["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"] == secret
    clients = {n for n, s in services.items() if "PREFECT_API_URL" in s.get("environment", {})}
    assert clients == {"prefect-worker", "prefect-worker-gpu", "dask-worker"}
    for name in clients:
        assert services[name]["environment"]["PREFECT_API_AUTH_STRING"] == secret, name
    assert stack_env_example()["PREFECT_AUTH_STRING"] == "admin:<prefect-password>"
    # Kubernetes: from the mlops-secrets Secret, for the worker, its flow-run Jobs (envFrom)
    # and the Dask workers that report task runs.
    from_secret = {"secretKeyRef": {"name": "mlops-secrets", "key": "PREFECT_API_AUTH_STRING"}}
    values = yaml.safe_load((INFRA / "k8s" / "prefect-worker-values.yaml").read_text())
    assert {"name": "PREFECT_API_AUTH_STRING", "valueFrom": from_secret} in values["worker"][
        "extraEnvVars"
    ]
    (dask,) = kubernetes()["Deployment/dask-worker"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "PREFECT_API_AUTH_STRING", "valueFrom": from_secret} in dask["env"]
    assert "PREFECT_API_AUTH_STRING" not in kubernetes()["ConfigMap/mlops-env"]["data"]


def test_no_secret_is_written_in_the_stack_files_only_read_from_stack_env():
    import re

    text = (INFRA / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    secrets = {n for n in required if re.search(r"PASSWORD|SECRET|AUTH_STRING", n)}
    assert secrets >= {
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "PREFECT_AUTH_STRING",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_TRAINING_PASSWORD",
        "MLFLOW_REVIEWER_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
    }
    for name in secrets:  # never a default a forgotten stack.env would silently fall back to
        assert not re.search(rf"\$\{{{name}:-", text), name
    for service, spec in compose()["services"].items():
        for name, value in spec.get("environment", {}).items():
            if re.search(r"PASSWORD|SECRET|AUTH_STRING", name):
                assert str(value).startswith("${") and str(value).endswith("}"), (service, name)
    # Every variable compose insists on is in the example, secrets as placeholders to replace.
    example = stack_env_example()
    assert required <= set(example)
    for name in secrets:
        assert re.fullmatch(r"(admin:)?<[\w-]+>", example[name]), name
    # No password in the MLflow server's files or the Kubernetes manifests either.
    ini = (PROJECT_ROOT / "mlflow" / "basic_auth.ini").read_text()
    assert "admin_password" not in ini
    for path in (INFRA / "k8s").iterdir():
        assert not re.search(r"(PASSWORD|AUTH_STRING)=[^.\s]", path.read_text()), path


def test_mlflow_server_runs_the_basic_auth_app_with_read_as_the_default(tmp_path):
    import json
    import stat
    import subprocess
    import sys

    dockerfile = (PROJECT_ROOT / "mlflow" / "Dockerfile").read_text()
    assert '"mlflow[auth]==3.17.*"' in dockerfile  # Flask-WTF, which the basic-auth app needs
    assert '"psycopg[binary]>=3.2"' in dockerfile and '"boto3>=1.35"' in dockerfile
    assert "\nUSER mlflow\n" in dockerfile
    # start.sh as the container runs it, with a stand-in `mlflow` that reports its arguments and
    # the auth settings the installed MLflow reads from what start.sh wrote.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    fake = bin_dir / "mlflow"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import importlib.util, json, os, pathlib, sys, mlflow\n"
        "path = pathlib.Path(mlflow.__file__).parent / 'server' / 'auth' / 'config.py'\n"
        "spec = importlib.util.spec_from_file_location('auth_config', path)\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "config = module.read_auth_config()._asdict()\n"
        "mode = os.stat(os.environ['MLFLOW_AUTH_CONFIG_PATH']).st_mode & 0o777\n"
        "print(json.dumps({'argv': sys.argv[1:], 'config': config, 'mode': mode}))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    auth_database = "postgresql://mlops:pa%25ss@postgres:5432/mlflow_auth"  # a `%` in it
    environment = {
        **{n: v for n, v in os.environ.items() if not n.startswith("MLFLOW_")},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "MLFLOW_AUTH_TEMPLATE": str(PROJECT_ROOT / "mlflow" / "basic_auth.ini"),
        **{
            name: placeholders(str(value))
            for name, value in compose()["services"]["mlflow"]["environment"].items()
        },
        "MLFLOW_AUTH_DATABASE_URI": auth_database,
    }
    started = subprocess.run(
        ["sh", str(PROJECT_ROOT / "mlflow" / "start.sh")],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(started.stdout)
    assert report["argv"][:3] == ["server", "--app-name", "basic-auth"]
    assert "--serve-artifacts" in report["argv"]
    config = report["config"]
    assert config["default_permission"] == "READ"
    assert config["database_uri"] == auth_database
    assert (config["admin_username"], config["admin_password"]) == (
        "<MLFLOW_ADMIN_USERNAME>",
        "<MLFLOW_ADMIN_PASSWORD>",
    )
    assert report["mode"] == 0o600  # holds the database password
    # Host headers the server answers: the compose name the workers use, and this host's.
    allowed = placeholders(
        compose()["services"]["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]
    )
    assert set(allowed.split(",")) == {"mlflow:5000", "localhost:5000", "127.0.0.1:5000"}


def mlflow_accounts_script() -> str:
    return (INFRA / "mlflow-accounts.py").read_text()


def test_mlflow_accounts_are_made_before_any_flow_runs_with_what_the_script_needs():
    import re

    services = compose()["services"]
    accounts = services["mlflow-accounts"]
    assert accounts["depends_on"] == {"mlflow": {"condition": "service_healthy"}}
    assert accounts["command"] == ["python", "/opt/mlops/infra/mlflow-accounts.py"]
    assert "COPY infra/mlflow-accounts.py ./infra/" in (INFRA / "worker.Dockerfile").read_text()
    for name in ("prefect-worker", "prefect-worker-gpu"):
        assert services[name]["depends_on"]["mlflow-accounts"] == {
            "condition": "service_completed_successfully"
        }
    needed = set(re.findall(r'required\("(\w+)"\)', mlflow_accounts_script()))
    assert needed >= {
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_TRAINING_PASSWORD",
        "MLFLOW_REVIEWER_PASSWORD",
    }
    environment = accounts["environment"]
    assert needed <= set(environment)
    # The experiment it makes has the artifact location the platform gives one.
    worker = services["prefect-worker"]["environment"]
    assert environment["MLOPS_ARTIFACT_URI"] == worker["MLOPS_ARTIFACT_URI"]
    assert environment["MLFLOW_TRAINING_USERNAME"] == worker["MLFLOW_TRACKING_USERNAME"]
    assert environment["MLFLOW_TRAINING_PASSWORD"] == worker["MLFLOW_TRACKING_PASSWORD"]
    # Kubernetes: the Job gets the same, the training account from the flows' own Secret.
    (job,) = kubernetes()["Job/mlflow-accounts"]["spec"]["template"]["spec"]["containers"]
    assert job["command"] == accounts["command"]
    from_env = {e["name"] for e in job["env"]}
    assert job["envFrom"] == [{"secretRef": {"name": "mlflow-accounts"}}]
    assert needed - from_env == {
        "MLFLOW_ADMIN_USERNAME",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_REVIEWER_USERNAME",
        "MLFLOW_REVIEWER_PASSWORD",
    }  # the mlflow-accounts Secret, documented in stack.yaml's header
    header = (INFRA / "k8s" / "stack.yaml").read_text()
    assert all(f"--from-literal={name}=" in header for name in needed - from_env)


def test_mlflow_accounts_get_least_privilege_through_endpoints_mlflow_serves():
    import importlib.util
    import re
    from pathlib import Path

    import mlflow
    from mlflow.server.handlers import get_endpoints

    script = mlflow_accounts_script()
    calls = set(re.findall(r'\.call\(\s*"(\w+)",\s*"([^"]+)"', script))
    auth = Path(mlflow.__file__).parent / "server" / "auth"
    spec = importlib.util.spec_from_file_location("mlflow_auth_routes", auth / "routes.py")
    routes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(routes)  # without the auth app, whose Flask-WTF is the image's
    names = {value: name for name, value in vars(routes).items() if isinstance(value, str)}
    auth_app = (auth / "__init__.py").read_text()
    served = {(path, method) for path, _, methods in get_endpoints() for method in methods}
    for method, path in calls:  # a wrong path or method would fail at every stack start
        if path in names:
            assert f'({names[path]}, "{method}")' in auth_app, (method, path)
        else:
            assert (path, method) in served, (method, path)
    assert ("POST", "/api/3.0/mlflow/users/permissions/grant") in calls
    # The training account: EDIT on its experiment, MANAGE on its registered model (deleting
    # the half-made version of a failed registration needs it); the reviewer READ.
    assert 'grant(admin, training, "experiment", experiment, EDIT)' in script
    assert 'grant(admin, training, "registered_model", model, MANAGE)' in script
    assert 'grant(admin, reviewer, "experiment", experiment, READ)' in script
    assert 'grant(admin, reviewer, "registered_model", model, READ)' in script
    # Accounts it makes: the training and reviewer ones; the admin is MLflow's own.
    assert re.findall(r"ensure_user\(admin, (\w+),", script) == ["training", "reviewer"]


def dask_mounts(service: dict) -> dict[str, str]:
    """Container path -> host file, all read-only, none made up when the file is missing."""
    mounts = {}
    for volume in service.get("volumes", []):
        assert volume["type"] == "bind" and volume["read_only"] is True
        assert volume["bind"] == {"create_host_path": False}
        mounts[volume["target"]] = volume["source"]
    return mounts


def test_dask_scheduler_workers_and_client_authenticate_each_other_with_tls():
    services = compose()["services"]
    roles = {"scheduler": "dask-scheduler", "worker": "dask-worker"}
    for role, name in roles.items():
        command = services[name]["command"]
        for flag, file in (("ca-file", "ca.crt"), ("cert", f"{role}.crt"), ("key", f"{role}.key")):
            assert f"--tls-{flag} {CERTS}/{file}" in command, (name, flag)
        assert dask_mounts(services[name]) == {
            f"{CERTS}/{file}": f"./certs/{file}"
            for file in ("ca.crt", f"{role}.crt", f"{role}.key")
        }  # its own key only, never the CA's
    assert "--protocol tls" in services["dask-scheduler"]["command"]
    assert services["dask-worker"]["command"].startswith("dask worker tls://dask-scheduler:8786")
    # The flow's client: a certificate of its own, where the settings say.
    environment = services["prefect-worker"]["environment"]
    client = {
        environment["MLOPS_DASK_TLS_CA_FILE"]: "./certs/ca.crt",
        environment["MLOPS_DASK_TLS_CERT"]: "./certs/client.crt",
        environment["MLOPS_DASK_TLS_KEY"]: "./certs/client.key",
    }
    for name in ("prefect-worker", "prefect-worker-gpu"):
        assert dask_mounts(services[name]) == client
    settings_fields = {f"MLOPS_{name.upper()}" for name in Settings.model_fields}
    assert {
        "MLOPS_DASK_TLS_CA_FILE",
        "MLOPS_DASK_TLS_CERT",
        "MLOPS_DASK_TLS_KEY",
    } <= settings_fields


def test_kubernetes_dask_cluster_and_flow_runs_use_tls_with_a_secret_per_role():
    import json

    objects = kubernetes()
    for role in ("scheduler", "worker"):
        pod = objects[f"Deployment/dask-{role}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["command"]
        for flag, file in (("ca-file", "ca.crt"), ("cert", f"{role}.crt"), ("key", f"{role}.key")):
            assert command[command.index(f"--tls-{flag}") + 1] == f"{CERTS}/{file}"
        assert container["volumeMounts"] == [
            {"name": "dask-tls", "mountPath": CERTS, "readOnly": True}
        ]
        assert pod["volumes"] == [
            {"name": "dask-tls", "secret": {"secretName": f"dask-{role}-tls", "defaultMode": 0o440}}
        ]
        assert pod["securityContext"]["fsGroup"] == 1000  # the image's user reads the key
    scheduler = objects["Deployment/dask-scheduler"]["spec"]["template"]["spec"]["containers"][0]
    assert scheduler["command"][2:4] == ["--protocol", "tls"]
    environment = objects["ConfigMap/mlops-env"]["data"]
    assert environment["MLOPS_DASK_ADDRESS"].startswith("tls://")
    template = json.loads((INFRA / "k8s" / "base-job-template.json").read_text())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["volumeMounts"] == [{"name": "dask-tls", "mountPath": CERTS, "readOnly": True}]
    assert pod["volumes"] == [
        {"name": "dask-tls", "secret": {"secretName": "dask-client-tls", "defaultMode": 0o440}}
    ]
    for name in ("MLOPS_DASK_TLS_CA_FILE", "MLOPS_DASK_TLS_CERT", "MLOPS_DASK_TLS_KEY"):
        assert environment[name].startswith(f"{CERTS}/")
    assert environment["MLOPS_DASK_TLS_CERT"].endswith("/client.crt")
    header = (INFRA / "k8s" / "stack.yaml").read_text()
    assert "kubectl -n mlops create secret generic dask-$role-tls" in header


def test_make_certs_makes_a_ca_and_certificates_it_verifies(tmp_path):
    import shutil
    import subprocess

    import pytest

    script = INFRA / "make-certs.sh"
    assert os.access(script, os.X_OK)
    assert "infra/certs/" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()  # its default
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    out = tmp_path / "certs"
    subprocess.run([str(script), str(out)], check=True, capture_output=True)
    roles = ("scheduler", "worker", "client")
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", out / "ca.crt", *(out / f"{r}.crt" for r in roles)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.count(": OK") == 3
    # Scheduler and workers accept connections; the client only opens them.
    for role, purposes in {
        "scheduler": ("sslserver", "sslclient"),
        "worker": ("sslserver", "sslclient"),
        "client": ("sslclient",),
    }.items():
        for purpose in purposes:
            subprocess.run(
                [
                    "openssl",
                    "verify",
                    "-purpose",
                    purpose,
                    "-CAfile",
                    out / "ca.crt",
                    out / f"{role}.crt",
                ],
                check=True,
                capture_output=True,
            )
    for key in out.glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    # A certificate of another CA is refused: peers are this CA's only.
    other = tmp_path / "other"
    subprocess.run([str(script), str(other)], check=True, capture_output=True)
    stranger = subprocess.run(
        ["openssl", "verify", "-CAfile", out / "ca.crt", other / "client.crt"],
        check=False,
        capture_output=True,
    )
    assert stranger.returncode != 0
    # Running it again never replaces certificates the stack is using.
    before = (out / "ca.crt").read_bytes()
    again = subprocess.run([str(script), str(out)], check=False, capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    assert (out / "ca.crt").read_bytes() == before
