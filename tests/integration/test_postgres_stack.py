"""The production path on loopback: an `mlflow server` process backed by PostgreSQL, artifacts
in the S3 server, the training job against it, versions landing in PostgreSQL's registry."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from flows.training import training_flow

pytestmark = pytest.mark.slow


def postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


INITDB, POSTGRES = postgres_bin("initdb"), postgres_bin("postgres")
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

requires_postgres = pytest.mark.skipif(
    not (INITDB and POSTGRES) or (os.geteuid() == 0 and not shutil.which("runuser")),
    reason="PostgreSQL is not installed (.ci/run installs Debian's postgresql)",
)


@pytest.fixture(scope="module")
def postgres(free_port, wait_for):
    """A private PostgreSQL cluster on a loopback port, gone when the module ends."""
    import psycopg

    # Not under pytest's root-only temp folder: the server runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if AS_POSTGRES:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        [*AS_POSTGRES, INITDB, "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [*AS_POSTGRES, POSTGRES, "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
         "-k", str(sockets)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def accepting() -> bool:
        try:
            psycopg.connect(admin).close()
        except psycopg.OperationalError:
            return False
        return True

    try:
        wait_for(accepting, 60, "PostgreSQL")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("CREATE DATABASE mlflow")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, s3_server, mlflow_servers):
    env = {
        "MLFLOW_S3_ENDPOINT_URL": s3_server["endpoint"],
        "AWS_ACCESS_KEY_ID": s3_server["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    url, _ = mlflow_servers(
        postgres, "--artifacts-destination", f"s3://{s3_server['bucket']}/served", env=env
    )
    return url


@requires_postgres
def test_training_against_the_postgres_backed_server_with_s3_artifacts(
    prefect_api, mlflow_server, postgres, s3_server, home, monkeypatch, digits
):
    for name, value in {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLOPS_ARTIFACT_URI": f"s3://{s3_server['bucket']}/pg-stack",
        "MLFLOW_S3_ENDPOINT_URL": s3_server["endpoint"],
        "AWS_ACCESS_KEY_ID": s3_server["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLOPS_CV_FOLDS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    result = training_flow(epochs=5)
    assert (result["version"], result["champion_version"]) == ("1", "1")
    assert not (home / "mlflow.db").exists()  # the server's store, not the embedded one

    import psycopg

    with psycopg.connect(postgres) as connection:
        versions = connection.execute("SELECT name, version, status FROM model_versions")
        assert versions.fetchall() == [("digits", 1, "READY")]
        aliases = connection.execute("SELECT alias, version FROM registered_model_aliases")
        assert aliases.fetchall() == [("champion", 1)]

    mlflow.set_tracking_uri(mlflow_server)
    source = MlflowClient().get_model_version_download_uri("digits", "1")
    assert source.startswith(f"s3://{s3_server['bucket']}/pg-stack/")
    model = mlflow.pyfunc.load_model("models:/digits@champion")
    predictions = model.predict(digits.drop(columns="target").head(50))
    assert (predictions["prediction"].to_numpy() == digits["target"].head(50)).mean() > 0.9
