"""Artifacts in S3-compatible storage: a real S3 API server over HTTP on loopback (moto's server
mode, with IAM auth on), the training job writing everything there, and the faults users meet."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import mlflow
import pytest
from conftest import MLOPS
from mlflow import MlflowClient

from flows.inference import predict_flow
from flows.training import training_flow
from tasks.data.storage import StorageError
from tasks.platform.settings import load_settings

pytestmark = pytest.mark.slow

BUCKET = "mlops-artifacts"  # the bucket the s3_server fixture creates


@pytest.fixture
def on_s3(s3_server, home, monkeypatch):
    """The environment a user sets to put the platform's artifacts in a bucket."""
    env = {
        "MLOPS_ARTIFACT_URI": f"s3://{BUCKET}/platform",
        "MLFLOW_S3_ENDPOINT_URL": s3_server["endpoint"],
        "AWS_ACCESS_KEY_ID": s3_server["key"],
        "AWS_SECRET_ACCESS_KEY": s3_server["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLOPS_CV_FOLDS": "2",
        "MLOPS_SERVE_CHECK": "true",  # the scoring server reads the model from the bucket
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return {**env, "MLOPS_HOME": str(home)}


def bucket_client(s3_server):
    """An S3 client as the bucket's owner, for looking at what the platform wrote."""
    return boto3.client(
        "s3",
        endpoint_url=s3_server["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=s3_server["key"],
        aws_secret_access_key=s3_server["secret"],
    )


def bucket_keys(s3_server) -> list[str]:
    s3 = bucket_client(s3_server)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_training_writes_everything_to_the_bucket_and_the_champion_loads_back(
    prefect_api, on_s3, s3_server, home, digits, tmp_path
):
    result = training_flow(epochs=5)
    keys = bucket_keys(s3_server)
    assert f"platform/snapshots/{result['data_sha256']}.parquet" in keys
    run_prefix = f"platform/mlflow/digits/{result['run_id']}/artifacts/"
    for artifact in (
        "validation/report.md",
        "profile/profile.json",
        "plots/roc_curves.png",
        "model_card/model_card.md",
    ):
        assert run_prefix + artifact in keys
    assert any(key.endswith("MLmodel") for key in keys)
    # Prefect's results of the expensive steps, for a rerun to pick up.
    assert any(key.startswith("platform/prefect-results/fit_candidate-keras_mlp-") for key in keys)
    assert not (home / "artifacts").exists()  # nothing of the run on local disk

    settings = load_settings()
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    version = MlflowClient().get_model_version_by_alias("digits", "champion")
    assert version.tags["serve_check"] == "true"  # its scoring server read it from the bucket
    assert (
        MlflowClient()
        .get_model_version_download_uri("digits", version.version)
        .startswith(f"s3://{BUCKET}/platform/")
    )
    model = mlflow.pyfunc.load_model("models:/digits@champion")
    predictions = model.predict(digits.drop(columns="target").head(100))
    assert (predictions["prediction"].to_numpy() == digits["target"].head(100)).mean() > 0.9

    # Predictions go to the bucket too, in one object, under the artifact root.
    scored = f"s3://{BUCKET}/platform/scored/digits.parquet"
    assert predict_flow(data_uri="builtin:digits", output_uri=scored)["rows"] == 1797
    assert "platform/scored/digits.parquet" in bucket_keys(s3_server)


def test_data_uris_are_read_from_the_bucket(on_s3, s3_server, digits):
    uri = f"s3://{BUCKET}/incoming/digits.csv"
    bucket_client(s3_server).put_object(
        Bucket=BUCKET, Key="incoming/digits.csv", Body=digits.to_csv(index=False).encode()
    )
    done = subprocess.run(
        [MLOPS, "validate", "--data", uri, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **on_s3},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["rows"] == 1797
    missing = subprocess.run(
        [MLOPS, "validate", "--data", f"s3://{BUCKET}/incoming/nope.csv"],
        capture_output=True,
        text=True,
        env={**os.environ, **on_s3},
        check=False,
    )
    assert missing.returncode == 1
    assert f"no object s3://{BUCKET}/incoming/nope.csv" in missing.stderr


FAULTS = {
    "endpoint down": (
        {"MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9"},
        "cannot reach the S3 endpoint",
    ),
    "missing bucket": ({"MLOPS_ARTIFACT_URI": "s3://no-such-bucket/x"}, "'no-such-bucket' at"),
    "wrong credentials": (
        {"AWS_ACCESS_KEY_ID": "AKIAWRONGKEY", "AWS_SECRET_ACCESS_KEY": "wrong"},
        "denied",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_storage_faults_fail_fast_with_a_clear_message_and_register_nothing(
    prefect_api, on_s3, monkeypatch, fault
):
    overrides, words = FAULTS[fault]
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(StorageError, match=words):
        training_flow(epochs=5)
    assert time.monotonic() - started < 60  # bounded retries, not a hang
    assert MlflowClient(load_settings().resolved_tracking_uri).search_registered_models() == []


def test_cli_names_the_endpoint_and_bucket_without_a_traceback(prefect_api, on_s3):
    env = {**os.environ, **on_s3, "PREFECT_API_URL": prefect_api}
    env["MLFLOW_S3_ENDPOINT_URL"] = "http://127.0.0.1:9"
    done = subprocess.run(
        [MLOPS, "train", "--epochs", "5"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 1
    assert "http://127.0.0.1:9" in done.stderr and BUCKET in done.stderr
    assert "Traceback" not in done.stderr


def test_canary_secrets_reach_no_log_param_tag_artifact_or_prefect_record(
    prefect_api, on_s3, s3_server, home, monkeypatch, capfd, caplog, bad_files
):
    """Plant secrets, run a good and a failing job, then scan everything they wrote."""
    from prefect.settings import get_current_settings

    canaries = [s3_server["secret"], "canary-mlflow-password-7f3a9c"]
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", canaries[1])  # unused by SQLite: must stay put
    caplog.set_level("DEBUG")
    training_flow(epochs=3)
    with pytest.raises(Exception, match="Data rejected"):
        training_flow(data_uri=str(bad_files["nulls"][0]))

    written: list[tuple[str, bytes]] = [
        (str(path), path.read_bytes()) for path in home.rglob("*") if path.is_file()
    ]
    s3 = bucket_client(s3_server)
    for key in bucket_keys(s3_server):
        written.append((key, s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    database = get_current_settings().server.database.connection_url.get_secret_value()
    prefect_db = Path(database.split("///", 1)[1])
    written += [(str(p), p.read_bytes()) for p in prefect_db.parent.glob(prefect_db.name + "*")]
    captured = capfd.readouterr()
    written.append(("stdout+stderr", (captured.out + captured.err).encode()))
    written.append(("log records", caplog.text.encode()))
    assert len(written) > 20
    for canary in canaries:
        leaks = [where for where, content in written if canary.encode() in content]
        assert leaks == [], f"{canary[:6]}... leaked into {leaks}"


def test_log_records_are_redacted_at_the_boundary(on_s3, monkeypatch, capfd):
    import logging

    from tasks.platform.settings import load_settings

    monkeypatch.setenv("AWS_SESSION_TOKEN", "canary-session-token-51d2")
    settings = load_settings()
    handler = logging.StreamHandler()
    logger = logging.getLogger("tasks.canary")
    logger.addHandler(handler)
    try:
        settings.install_redaction()
        logger.warning("connecting with token %s", "canary-session-token-51d2")
    finally:
        logger.removeHandler(handler)
    assert "canary-session-token-51d2" not in capfd.readouterr().err
    assert settings.redact("x canary-session-token-51d2 y") == "x *** y"
