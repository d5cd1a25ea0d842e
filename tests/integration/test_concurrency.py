"""Training runs at once on the embedded default (one SQLite store, one home): all succeed,
an identical job registers once, and the champion never ends on a version that did not beat
the one it replaced."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import MLOPS
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def test_runs_at_once_succeed_register_once_per_job_with_one_consistent_champion(home, prefect_api):
    env = {
        **os.environ,
        "MLOPS_HOME": str(home),
        "PREFECT_API_URL": prefect_api,
        "MLOPS_CV_FOLDS": "2",
    }
    runs = [
        subprocess.Popen(
            [MLOPS, "train", "--epochs", epochs, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for epochs in ("5", "6", "5")  # two jobs, one of them twice
    ]
    outputs = [run.communicate(timeout=1200) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
    every = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    results = [r for r in every if not r["skipped"]]
    assert sorted(r["version"] for r in results) == ["1", "2"]
    # The twin of the first job registered nothing and names its twin's version.
    twins = [every[0], every[2]]
    assert sorted(r["skipped"] for r in twins) == [False, True]
    assert twins[0]["version"] == twins[1]["version"]

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    for result in results:
        assert client.get_run(result["run_id"]).info.status == "FINISHED"
    versions = {str(v.version): v for v in client.search_model_versions("name = 'digits'")}
    assert all(v.status == "READY" for v in versions.values())
    champion = str(client.get_model_version_by_alias("digits", "champion").version)
    tags = versions[champion].tags
    # The champion was compared with exactly the version it replaced: a run whose comparison
    # went stale while it trained (the other run promoted first) registers a challenger.
    assert tags["promotion_champion_version"] == tags["champion.previous_version"]
    for result in results:
        if "during this run" in result["decision"]:
            assert result["alias"] == "challenger" and not result["promoted"]
    assert [r["champion_version"] for r in results].count(champion) >= 1
