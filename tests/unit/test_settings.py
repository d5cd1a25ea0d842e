"""The one Settings: read from the environment at an entry point, secrets kept out of text."""

from __future__ import annotations

import os

from tasks.settings import PROCESS_DEFAULTS, Settings, load_settings


def test_an_entry_point_sets_the_libraries_variables_but_never_a_users_own(home, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    settings = load_settings()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert os.environ["DO_NOT_TRACK"] == PROCESS_DEFAULTS["DO_NOT_TRACK"] == "1"
    assert os.environ["PREFECT_HOME"] == str(home / "prefect")
    assert settings.home_dir == home and (home / "artifacts").is_dir()


def test_every_credential_is_masked_in_text(home, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-1")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:prefect-pass-2")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "mlflow-pass-3")
    settings = Settings()
    text = "aws-secret-1 / admin:prefect-pass-2 / mlflow-pass-3 / public"
    assert settings.redact(text) == "*** / *** / *** / public"


def test_the_prefect_api_is_the_one_named_else_the_up_server_else_ephemeral(home, monkeypatch):
    assert Settings().resolved_prefect_api_url is None  # nothing named, nothing up
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.internal:4200/api")
    assert Settings().resolved_prefect_api_url == "http://prefect.internal:4200/api"


def test_a_child_process_gets_this_environment_less_and_plus_what_is_asked(home, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere/api")
    env = Settings().subprocess_env(drop=("PREFECT_API_URL",), PREFECT_UI_API_URL="http://ui")
    assert "PREFECT_API_URL" not in env and env["PREFECT_UI_API_URL"] == "http://ui"
    assert env["MLOPS_HOME"] == str(home)
