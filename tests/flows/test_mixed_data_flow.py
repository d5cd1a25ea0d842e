"""Tables as users have them, through the whole job: text categories, missing cells, an
identifier, a date, names with spaces, units and accents, a text label; and a numeric label
(regression). Suggest a suite, train, register, load the champion in a fresh process and
predict raw rows with gaps and a category it never saw."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.feedback import feedback_flow
from flows.inference import predict_flow
from flows.training import training_flow
from tasks.data.features import FeatureError
from tasks.data.sources import DataLoadError
from tasks.platform.settings import load_settings
from tasks.quality.suggest import suggest_suite
from tasks.quality.validation import DataValidationError

pytestmark = pytest.mark.slow

SIZE = "size class"
TEXTURE = "Größe (µm)"
# Enough for the network to be a candidate; what wins is not what these tests are about.
EPOCHS = 10


def patients(rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """scikit-learn's breast cancer table as an export looks: a text label, a text category
    with gaps, a number with gaps, an identifier and a date column, awkward names."""
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(seed)
    raw = load_breast_cancer(as_frame=True).frame
    frame = raw.drop(columns=[c for c in raw.columns if c.startswith("worst")][1:])
    frame = frame.rename(columns={"mean radius": "mean radius (mm)", "mean texture": TEXTURE})
    frame[SIZE] = pd.cut(frame["worst radius"], 4, labels=["small", "medium", "large", "huge"])
    frame[SIZE] = frame[SIZE].astype(str)
    frame = frame.drop(columns=["worst radius"])
    frame.loc[rng.random(len(frame)) < 0.08, TEXTURE] = np.nan
    frame.loc[rng.random(len(frame)) < 0.05, SIZE] = None
    frame.insert(0, "patient id", [f"P{100000 + i}" for i in range(len(frame))])
    frame["visit date"] = pd.date_range("2024-01-01", periods=len(frame), freq="D").astype(str)
    frame["diagnosis"] = raw["target"].map({0: "malignant", 1: "benign"})
    return frame.drop(columns="target").head(rows) if rows else frame.drop(columns="target")


def progression() -> pd.DataFrame:
    """scikit-learn's diabetes table with its sex as text and gaps in the BMI: regression."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].map({1.0: "female", 2.0: "male"})
    frame.loc[::9, "bmi"] = np.nan
    return frame.rename(columns={"bmi": "body mass index (kg/m²)", "target": "progression"})


def write_suite(frame: pd.DataFrame, name: str, target: str, folder: Path) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(suggest_suite(frame, name, target), indent=2))
    return path


def train_progression(path: Path, force: bool = False) -> dict:
    """The regression job, one column left out by hand (as `--exclude s6`)."""
    return training_flow(
        data_uri=str(path),
        target="progression",
        model_name="progression",
        epochs=EPOCHS,
        exclude=["s6"],
        force=force,
    )


@pytest.fixture(scope="module")
def jobs(prefect_api, module_home, tmp_path_factory):
    """A classification and a regression job on mixed tables, each from its suggested suite."""
    folder = tmp_path_factory.mktemp("mixed")
    suites = folder / "suites"
    suites.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_SUITES_DIR", str(suites))
        cancer = folder / "patients.csv"
        patients().to_csv(cancer, index=False)
        write_suite(patients(), "patients", "diagnosis", suites)
        first = training_flow(
            data_uri=str(cancer), target="diagnosis", model_name="patients", epochs=EPOCHS
        )
        diabetes = folder / "progression.csv"
        progression().to_csv(diabetes, index=False)
        write_suite(progression(), "progression", "progression", suites)
        regression = train_progression(diabetes)
        yield {
            "patients": first,
            "progression": regression,
            "folder": folder,
            "settings": load_settings(),
            "home": module_home,
        }


def test_suite_holds_the_feature_types_and_the_run_follows_them(jobs):
    suite = json.loads((jobs["settings"].suites_dir / "patients.json").read_text())
    types = suite["meta"]["features"]
    assert suite["meta"]["task"] == "classification"
    assert SIZE in types["categorical"] and TEXTURE in types["numeric"]
    assert set(types["excluded"]) == {"patient id", "visit date"}
    result = jobs["patients"]
    assert result["task"] == "classification" and result["promoted"]
    assert set(result["features"]["excluded"]) == {"patient id", "visit date"}
    assert result["metrics"]["test_accuracy"] > 0.9


def test_champion_predicts_raw_rows_with_gaps_and_unseen_categories_in_a_fresh_process(jobs):
    rows = patients(12).drop(columns="diagnosis")
    rows.loc[0, TEXTURE] = np.nan
    rows.loc[1, SIZE] = "gigantic"  # never seen in training
    rows.loc[2, SIZE] = None
    path = jobs["folder"] / "raw_rows.csv"
    rows.to_csv(path, index=False)
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({jobs['settings'].resolved_tracking_uri!r})\n"
        "model = mlflow.pyfunc.load_model('models:/patients@champion')\n"
        f"frame = pd.read_csv({str(path)!r})\n"
        "features = model.metadata.get_input_schema().input_names()\n"
        "out = model.predict(frame[features])\n"
        "types = {c.name: str(c.type) for c in model.metadata.get_input_schema().inputs}\n"
        "kinds = model.metadata.metadata['feature_kinds']\n"
        "print(json.dumps({'predictions': out['prediction'].tolist(), 'columns': "
        "list(out.columns), 'types': types, 'kinds': kinds}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(answer["predictions"]) == 12
    assert set(answer["predictions"]) <= {"malignant", "benign"}
    assert answer["columns"] == ["prediction", "probability_benign", "probability_malignant"]
    # The signature names each column (as `Any`: numbers whole or not, text, gaps), its kind
    # recorded beside it; the left-out columns are not inputs.
    assert set(answer["types"].values()) == {"Any"}
    assert answer["kinds"][SIZE] == "categorical" and answer["kinds"][TEXTURE] == "numeric"
    assert "patient id" not in answer["types"] and "visit date" not in answer["types"]


def test_predict_counts_unseen_categories(jobs):
    batch = patients()
    batch.loc[:4, SIZE] = "gigantic"
    path = jobs["folder"] / "batch.csv"
    batch.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_SUITES_DIR", str(jobs["settings"].suites_dir))
        result = predict_flow(
            data_uri=str(path), output_uri=str(jobs["home"] / "out.csv"), model="patients"
        )
    assert result["unseen_categories"] == {SIZE: 5}
    assert sum(result["predicted_counts"].values()) == len(batch)


def test_regression_is_inferred_scored_plotted_and_registered(jobs):
    result = jobs["progression"]
    assert result["task"] == "regression" and result["promoted"]
    assert {"test_rmse", "test_mae", "test_r2"} <= set(result["metrics"])
    assert result["metrics"]["test_r2"] > 0.2
    assert result["features"]["excluded"]["s6"] == "excluded by --exclude"
    assert result["family"] in ("keras_mlp", "ridge", "gradient_boosting")
    client = MlflowClient(jobs["settings"].resolved_tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(result["run_id"], "plots")}
    assert {"plots/predicted_vs_actual.png", "plots/residuals.png"} <= artifacts
    version = client.get_model_version("progression", result["version"])
    assert version.tags["task"] == "regression"


def test_a_regressors_error_is_estimated_before_labels_and_reported_beside_them(jobs):
    """Direct loss estimation: the champion's model of its own error (fitted on its validation
    rows: text, gaps and all) estimates a batch's MAE and RMSE; the labels, once fed back,
    are reported beside the estimate, and plotted with it."""
    table = progression()
    batch, labels = jobs["folder"] / "visits.csv", jobs["folder"] / "visits-labels.csv"
    table.drop(columns="progression").to_csv(batch, index=False)
    table[["progression"]].rename_axis("row_id").reset_index().to_csv(labels, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_SUITES_DIR", str(jobs["settings"].suites_dir))
        out = str(jobs["home"] / "visits-scored.csv")
        predicted = predict_flow(data_uri=str(batch), output_uri=out, model="progression")
        found = feedback_flow(labels_uri=str(labels), model="progression")
    estimated = predicted["estimated_metrics"]
    assert estimated["method"].startswith("direct loss estimation, fitted on")
    low, high = estimated["rmse_interval"]
    assert 0 < estimated["mae"] < estimated["rmse"] and low < estimated["rmse"] < high
    # Its rows' error as the version's own held-out rows had it, within their spread.
    assert estimated["rmse"] == pytest.approx(jobs["progression"]["metrics"]["test_rmse"], rel=0.35)
    assert found["estimated_metrics"] == estimated
    assert found["degradation"]["metric"] == "rmse"
    client = MlflowClient(jobs["settings"].resolved_tracking_uri)
    run = client.get_run(found["monitoring_run_id"])
    assert run.data.metrics["estimated_rmse"] == pytest.approx(estimated["rmse"])
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == [
        "plots/production_rmse.png"
    ]


def test_a_retrained_regressor_is_judged_by_rmse_against_the_champion(jobs):
    diabetes = jobs["folder"] / "progression.csv"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_SUITES_DIR", str(jobs["settings"].suites_dir))
        again = train_progression(diabetes, force=True)
    # The champion was re-scored on the same rows, by the regression metrics.
    assert again["version"] == "2" and "test_rmse" in again["decision"]
    assert again["champion_metrics"]["test_rmse"] == pytest.approx(
        again["metrics"]["test_rmse"], rel=1e-3
    )
    assert again["promotion"]["metric"] == "test_rmse"
    assert again["promotion"]["test"] in ("t-test on per-row errors", "bootstrap")


def _registry(settings) -> dict:
    client = MlflowClient(settings.resolved_tracking_uri)
    return {
        m.name: (dict(m.aliases), len(client.search_model_versions(f"name = '{m.name}'")))
        for m in client.search_registered_models()
    }


@pytest.mark.parametrize("kind", ["every category new", "number now text", "duplicate column"])
def test_bad_mixed_files_are_refused_by_name_and_register_nothing(jobs, kind):
    frame = patients()
    if kind == "every category new":
        frame[SIZE] = "unheard-of"
        error, words = DataValidationError, SIZE
    elif kind == "number now text":
        frame["mean radius (mm)"] = "n/a"
        error, words = DataValidationError, "mean radius (mm)"
    path = jobs["folder"] / f"bad-{kind.replace(' ', '-')}.csv"
    frame.to_csv(path, index=False)
    if kind == "duplicate column":
        header, *lines = path.read_text().splitlines()
        path.write_text("\n".join([f"{header},{SIZE}", *(f"{line},x" for line in lines)]))
        error, words = DataLoadError, SIZE
    before = _registry(jobs["settings"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_SUITES_DIR", str(jobs["settings"].suites_dir))
        with pytest.raises(error) as refused:
            training_flow(data_uri=str(path), target="diagnosis", model_name="patients", epochs=5)
    assert words in str(refused.value)
    assert _registry(jobs["settings"]) == before


def test_a_label_with_one_class_is_refused_naming_it(jobs):
    frame = patients()
    frame["diagnosis"] = "benign"
    with pytest.raises(FeatureError, match="diagnosis"):
        suggest_suite(frame, "one_class", "diagnosis")
