"""The one Settings: read from the environment at an entry point, secrets kept out of text."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tasks.core.errors import PlatformError
from tasks.evaluation.promotion import PromotionPolicy
from tasks.platform.settings import PROCESS_DEFAULTS, Settings


def test_an_entry_point_sets_the_libraries_variables_but_never_a_users_own(home):
    """In a process of its own, as a command starts: the variables are read at import."""
    env = {k: v for k, v in os.environ.items() if k not in {*PROCESS_DEFAULTS, "PREFECT_HOME"}}
    env.update(OMP_WAIT_POLICY="ACTIVE", MLOPS_HOME=str(home))  # the user's choice stays
    code = "import json, os; from tasks.platform.settings import load_settings; load_settings(); "
    code += "print(json.dumps(dict(os.environ)))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["OMP_WAIT_POLICY"] == "ACTIVE"
    assert seen["DO_NOT_TRACK"] == PROCESS_DEFAULTS["DO_NOT_TRACK"] == "1"
    assert seen["PREFECT_HOME"] == str(home / "prefect") and (home / "artifacts").is_dir()


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


def test_the_results_key_is_made_once_for_the_owner_alone_unless_one_is_given(home, monkeypatch):
    key = Settings().results_signing_key()
    assert len(key) == 64 and Settings().results_signing_key() == key  # kept, not remade
    assert (home / "results.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("MLOPS_RESULTS_KEY", "a-key-from-a-secret-store")
    given = Settings()
    assert given.results_signing_key() == b"a-key-from-a-secret-store"
    assert given.redact("key a-key-from-a-secret-store") == "key ***"


def test_a_regression_job_gets_its_own_promotion_defaults(home):
    settings = Settings()
    assert settings.promotion_policy("classification") == PromotionPolicy(
        "test_accuracy", 0.0, ("test_f1_macro", "test_roc_auc_ovr"), 0.01
    )
    assert settings.promotion_policy("regression") == PromotionPolicy(
        "test_rmse", 0.0, ("test_mae",), 0.05
    )


def test_promotion_settings_a_user_names_are_kept_for_regression(home, monkeypatch):
    monkeypatch.setenv("MLOPS_PROMOTION_METRIC", "test_r2")
    monkeypatch.setenv("MLOPS_PROMOTION_MARGIN", "0.02")
    policy = Settings().promotion_policy("regression")
    assert policy == PromotionPolicy("test_r2", 0.02, ("test_mae",), 0.05)
    monkeypatch.setenv("MLOPS_GUARD_METRICS", '["test_rmse"]')
    monkeypatch.setenv("MLOPS_GUARD_TOLERANCE", "0.1")
    assert Settings().promotion_policy("regression").guards == ("test_rmse",)
    assert Settings().promotion_policy("regression").tolerance == 0.1


@pytest.mark.parametrize(
    ("variable", "value", "task", "named"),
    [
        ("MLOPS_PROMOTION_METRIC", "test_accuracy", "regression", "test_accuracy"),
        ("MLOPS_GUARD_METRICS", '["test_f1_macro"]', "regression", "test_f1_macro"),
        ("MLOPS_PROMOTION_METRIC", "test_rmse", "classification", "test_rmse"),
    ],
)
def test_a_metric_of_the_other_task_is_refused_in_one_line(
    home, monkeypatch, variable, value, task, named
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(PlatformError) as refused:
        Settings().promotion_policy(task)
    message = str(refused.value)
    assert message.startswith(f"{variable} names {named!r}, which is not a metric of a {task} job")
    assert "\n" not in message
    assert ("test_rmse, test_mae, test_r2" in message) == (task == "regression")
