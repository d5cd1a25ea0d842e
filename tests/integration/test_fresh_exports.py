"""Tables exported as users export them, through `mlops train`: the champion predicts a fresh
export of its table read by `pandas.read_csv` alone (whole numbers, gaps, text, columns it
never read), in a new process and from MLflow's scoring server; the row numbers an export
carries are left out, named; a column that gives the label away is flagged, not dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_mlops
from mlflow import MlflowClient

from tasks.evaluation.leakage import LEAK_SCORE
from tasks.platform.settings import load_settings
from tasks.quality.suggest import write_suite
from tasks.registry import serving

pytestmark = pytest.mark.slow

ROW_INDEXES = {"Unnamed: 0": "0..399", "rownames": "1..400", "index": "0..399"}


def clinic(rows: int, seed: int) -> pd.DataFrame:
    """Whole-number counts, a dose with gaps, a ward as text and a noisy label, sorted by
    the label, with the row numbers pandas, R and a database write beside the rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "visits": rng.integers(0, 12, rows),
            "age": rng.integers(20, 90, rows),
            "dose (mg)": rng.normal(40, 10, rows).round(1),
            "ward": rng.choice(["east", "west", "north"], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "dose (mg)"] = np.nan
    risk = (frame["visits"] - 6) / 3 + (frame["age"] - 55) / 20 + rng.normal(0, 0.8, rows)
    frame["outcome"] = np.where(risk > 0, "readmitted", "home")
    frame = frame.sort_values("outcome", ignore_index=True)
    frame.insert(0, "Unnamed: 0", np.arange(rows))
    return frame.assign(rownames=np.arange(1, rows + 1), index=np.arange(rows))


def admissions(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Weak honest features and `days to discharge`, recorded after the outcome (negative
    for a death): it gives the label away."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 95, rows)
    pressure = rng.normal(120, 15, rows).round(1)
    outcome = np.where((age - 60) / 15 + rng.normal(0, 1.5, rows) > 0.5, "died", "survived")
    days = np.where(outcome == "died", -rng.integers(1, 30, rows), rng.integers(1, 30, rows))
    return pd.DataFrame(
        {"age": age, "pressure": pressure, "days to discharge": days, "outcome": outcome}
    )


def train(env: dict, folder: Path, frame: pd.DataFrame, name: str) -> dict:
    """The table written as CSV with its suggested suite, then `mlops train --json`."""
    data = folder / f"{name}.csv"
    frame.to_csv(data, index=False)
    write_suite(frame, name, "outcome", None, folder / f"{name}.json")
    args = ["--data", str(data), "--target", "outcome", "--model-name", name, "--epochs", "3"]
    done = run_mlops("train", *args, "--suite", str(folder / f"{name}.json"), "--json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


@pytest.fixture(scope="module")
def jobs(module_home, prefect_api, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("exports")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    return {
        "clinic": train(env, folder, clinic(400, seed=0), "clinic"),
        "admissions": train(env, folder, admissions(), "admissions"),
        "settings": load_settings(),
    }


def test_a_fresh_export_read_plainly_is_predicted_in_a_new_process_and_by_the_scoring_server(
    jobs, tmp_path
):
    holdout = tmp_path / "holdout.csv"
    clinic(30, seed=7).assign(note="not a feature").to_csv(holdout, index=False)
    rows = pd.read_csv(holdout)
    assert pd.api.types.is_integer_dtype(rows["visits"]) and rows["dose (mg)"].hasnans
    assert pd.api.types.is_string_dtype(rows["ward"])
    uri = jobs["settings"].resolved_tracking_uri
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model('models:/clinic@champion')\n"
        "out = model.predict(pd.read_csv(sys.argv[2]))\n"
        "print(json.dumps(out['prediction'].tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, uri, str(holdout)],
        cwd=tmp_path,  # a new process elsewhere, as a user's service loads it
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    predicted = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(predicted) == 30 and set(predicted) <= {"readmitted", "home"}
    with serving.scoring_server(jobs["settings"], "models:/clinic@champion", 180) as url:
        served, _ = serving.canary(url, rows, 60)
    assert served["prediction"].tolist() == predicted


def test_row_numbers_of_the_export_are_left_out_named_and_leak_nothing(jobs):
    result = jobs["clinic"]
    excluded = result["features"]["excluded"]
    assert excluded == {
        name: f"row index ({run}, one per row)" for name, run in ROW_INDEXES.items()
    }
    assert result["features"]["numeric"] == ["visits", "age", "dose (mg)"]
    # Sorted by the label, a row number alone would score ~1; without them the model cannot.
    assert result["metrics"]["test_accuracy"] < LEAK_SCORE
    assert result["suspected_leaks"] == []


def test_a_column_that_gives_the_label_away_is_flagged_on_the_run_card_and_output(jobs, tmp_path):
    result = jobs["admissions"]
    (leak,) = result["suspected_leaks"]
    assert leak["feature"] == "days to discharge" and leak["score"] >= LEAK_SCORE
    assert result["promoted"]  # a warning, not a failure
    assert "Suspected leak: column 'days to discharge' alone predicts" in result["stderr"]
    assert "--exclude days to discharge" in result["stderr"]
    client = MlflowClient(jobs["settings"].resolved_tracking_uri)
    tags = client.get_run(result["run_id"]).data.tags
    assert tags["suspected_leaks"].startswith("days to discharge (")
    assert client.get_run(jobs["clinic"]["run_id"]).data.tags["suspected_leaks"] == "none"
    card = Path(
        client.download_artifacts(result["run_id"], "model_card/model_card.md", str(tmp_path))
    ).read_text()
    assert "- **Suspected leak:** column `days to discharge` alone predicts the label" in card
    folder = tmp_path / "clinic"
    folder.mkdir()
    clinic_card = Path(
        client.download_artifacts(jobs["clinic"]["run_id"], "model_card/model_card.md", str(folder))
    ).read_text()
    assert "- Left out of the model: `Unnamed: 0`: row index (0..399, one per row); " in clinic_card
    assert "Suspected leak" not in clinic_card
