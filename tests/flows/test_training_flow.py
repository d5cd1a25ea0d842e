"""The training flow under Prefect's test harness, against a real SQLite MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.inference import predict_flow
from flows.training import training_flow
from tasks.data.snapshots import frame_sha256
from tasks.data.sources import DataLoadError
from tasks.data.storage import local_path
from tasks.platform.settings import load_settings
from tasks.quality.drift import DriftDetectedError, plot_filename
from tasks.quality.validation import DataValidationError
from tasks.registry.versions import describe_versions

pytestmark = pytest.mark.slow


# The network's epochs: past the 5 its curve is checked for, short of the default 60 (where
# early stopping ends a run is the network's unit tests' business).
EPOCHS = 8


@pytest.fixture(scope="module")
def trained(prefect_api, module_home):
    """The default job but its epochs three times: as `make demo` twice, then with --force."""
    first = training_flow(epochs=EPOCHS)
    again = training_flow(epochs=EPOCHS)
    second = training_flow(epochs=EPOCHS, force=True)
    settings = load_settings()
    return {"first": first, "again": again, "second": second, "settings": settings}


@pytest.fixture(scope="module")
def client(trained) -> MlflowClient:
    return MlflowClient(trained["settings"].resolved_tracking_uri)


def registry_state(client: MlflowClient) -> dict:
    """Everything a person would compare: versions, their tags and status, and the aliases."""
    state = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        state[model.name] = {
            "aliases": dict(model.aliases),
            "versions": {v.version: (v.status, dict(v.tags)) for v in versions},
        }
    return state


def latest_run(client: MlflowClient):
    experiment = client.get_experiment_by_name("digits")
    (run,) = client.search_runs(
        [experiment.experiment_id], order_by=["start_time DESC"], max_results=1
    )
    return run


def prefect_artifacts(flow_run_id: str) -> dict[str, str]:
    """The markdown artifacts a person sees on the flow run's page in the Prefect UI."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact.data for artifact in artifacts}


def test_an_identical_rerun_registers_nothing_and_names_the_existing_version(trained, client):
    first, again = trained["first"], trained["again"]
    assert again["skipped"] is True and not first["skipped"]
    assert again["version"] == first["version"] == "1"
    assert again["run_id"] == first["run_id"] and again["metrics"] == first["metrics"]
    assert again["data_sha256"] == first["data_sha256"] and "--force retrains" in again["decision"]
    # The skipped run is on record, and says which version made it unnecessary.
    experiment = client.get_experiment_by_name("digits")
    skipped = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlops.skipped` = 'true'"
    )
    assert [r.data.tags["mlops.skipped_for_version"] for r in skipped] == ["1"]
    assert skipped[0].info.status == "FINISHED"


def test_two_runs_register_versions_1_and_2_with_exactly_one_champion(trained, client):
    first, second = trained["first"], trained["second"]
    assert (first["version"], second["version"]) == ("1", "2")
    assert first["promoted"] and first["decision"] == "no champion yet"
    aliases = {k: str(v) for k, v in client.get_registered_model("digits").aliases.items()}
    assert aliases["champion"] == second["champion_version"]
    assert aliases["champion"] == ("2" if second["promoted"] else "1")
    if not second["promoted"]:
        assert aliases["challenger"] == "2"
    # The second run re-scored the first champion on its own test rows.
    assert second["previous_champion_version"] == "1"
    assert set(second["champion_metrics"]) == set(second["metrics"])


def test_scores_come_with_intervals_and_the_champion_comparison_with_a_p_value(trained, client):
    first, second = trained["first"], trained["second"]
    for result in (first, second):
        assert set(result["metric_intervals"]) == set(result["metrics"])
        for metric, (low, high) in result["metric_intervals"].items():
            assert low <= result["metrics"][metric] <= high
    # 360 test rows: accuracy is known to within a few points, not to four decimals.
    low, high = first["metric_intervals"]["test_accuracy"]
    assert 0.005 < high - low < 0.08
    run = client.get_run(first["run_id"]).data.metrics
    assert run["test_accuracy_low"] == low and run["test_accuracy_high"] == high
    assert first["promotion"]["p_value"] is None  # no champion to compare with
    paired = second["promotion"]
    assert paired["mode"] == "point" and paired["test"] == "McNemar exact test"
    assert paired["difference_interval"][0] <= paired["difference"]
    assert paired["difference"] <= paired["difference_interval"][1]
    # The same job forced again: the same model (up to threads' rounding), no evidence of a
    # difference.
    assert abs(paired["difference"]) < 0.01 and paired["p_value"] > 0.05
    tags = client.get_model_version("digits", second["version"]).tags
    assert float(tags["promotion_p_value"]) == pytest.approx(paired["p_value"], rel=1e-5)
    assert tags["promotion_test"] == "point"


def test_champion_reaches_the_accuracy_bar(trained, client):
    champion = client.get_model_version_by_alias("digits", "champion")
    metrics = client.get_run(champion.run_id).data.metrics
    assert metrics["test_accuracy"] >= 0.98  # as a well-tuned SVM reads digits
    for name in ("test_f1_macro", "test_precision_macro", "test_recall_macro", "test_roc_auc_ovr"):
        assert 0.9 < metrics[name] <= 1.0
    # Cross-validation is asked for (--cv): the default job fits each candidate once.
    assert not any(name.startswith("cv_") for name in metrics)
    assert trained["first"]["cross_validation"] == {}


def test_champion_loads_through_pyfunc_and_predicts_from_a_frame(trained, digits):
    mlflow.set_tracking_uri(trained["settings"].resolved_tracking_uri)
    model = mlflow.pyfunc.load_model("models:/digits@champion")
    features = digits.drop(columns="target").iloc[:300]
    predictions = model.predict(features)
    assert list(predictions.columns) == ["prediction"] + [f"probability_{d}" for d in range(10)]
    assert (predictions["prediction"].to_numpy() == digits["target"].iloc[:300]).mean() > 0.95
    # Pixels that are blank in every training image are left out (constant), and named.
    constant = [c for c in features.columns if digits[c].nunique() == 1]
    assert constant and set(trained["first"]["features"]["excluded"]) == set(constant)
    inputs = [c for c in features.columns if c not in constant]
    assert model.metadata.get_input_schema().input_names() == inputs


def test_versions_carry_lineage_and_the_decision(trained, client, digits, prefect_api):
    from prefect.client.orchestration import get_client

    version = client.get_model_version("digits", trained["second"]["version"])
    tags = version.tags
    assert tags["data_sha256"] == frame_sha256(digits) == trained["second"]["data_sha256"]
    assert tags["validation_suite"] == "digits"
    assert tags["validation_success"] == "true"
    assert tags["drift_detected"] == "false"
    assert tags["promotion_decision"] in ("champion", "challenger")
    assert tags["promotion_champion_version"] == "1"
    assert "test_accuracy >= champion" in tags["promotion_rule"]
    assert tags["registration"] == "complete" and len(tags["job_key"]) == 64
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(tags["flow_run_id"])
    assert flow_run.state.is_completed()


def test_run_holds_snapshot_metrics_per_epoch_plots_and_card(trained, client, tmp_path):
    run_id = trained["first"]["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.digest == trained["first"]["data_sha256"][:12]
    snapshot = local_path(run.data.params["data_snapshot"])
    assert frame_sha256(pd.read_parquet(snapshot)) == trained["first"]["data_sha256"]
    curve = client.get_metric_history(run_id, "keras_mlp.val_loss")
    assert len(curve) > 5 and [m.step for m in curve[:3]] == [1, 2, 3]
    for family in ("keras_mlp", "logistic_regression", "svm", "gradient_boosting"):
        assert f"{family}.test_accuracy" in run.data.metrics
    local = Path(client.download_artifacts(run_id, "", str(tmp_path)))
    assert (local / "plots" / "confusion_matrix.png").stat().st_size > 5000
    assert (local / "plots" / "roc_curves.png").stat().st_size > 5000
    card = (local / "model_card" / "model_card.md").read_text()
    assert card.startswith("# Model card: digits v1")
    assert trained["first"]["data_sha256"] in card and "![plots/roc_curves.png]" in card
    assert "Cross-validation of the chosen family: not run (`mlops train --cv`" in card
    decision = json.loads((local / "promotion" / "decision.json").read_text())
    assert decision["alias"] == "champion"


BAD_KINDS = {
    "empty": DataLoadError,
    "semicolons": DataLoadError,
    "truncated": DataLoadError,
    "no_target": DataLoadError,
    "nulls": DataValidationError,
    "out_of_range": DataValidationError,
    "text_in_numeric": DataValidationError,
    "missing_class": DataValidationError,
    "dropped_column": DataValidationError,
}


@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_bad_files_are_refused_and_the_registry_left_exactly_as_it_was(
    trained, client, bad_files, kind, tmp_path
):
    path, words = bad_files[kind]
    before = registry_state(client)
    with pytest.raises(BAD_KINDS[kind]) as refused:
        training_flow(data_uri=str(path))
    assert words in str(refused.value)
    assert registry_state(client) == before
    latest = latest_run(client)
    assert latest.info.status == "FAILED"
    assert latest.data.tags["mlops.data_uri"] == str(path)
    run_id = latest.info.run_id
    result = json.loads(
        Path(client.download_artifacts(run_id, "validation/result.json", str(tmp_path))).read_text()
    )
    assert result["success"] is False and result["failures"]
    if BAD_KINDS[kind] is DataValidationError:
        column = words.split(":")[0]
        report = Path(client.download_artifacts(run_id, "validation/report.md", str(tmp_path)))
        assert column in report.read_text()
        artifacts = prefect_artifacts(latest.data.tags["mlops.flow_run_id"])
        assert column in artifacts["validation-report"]


def flow_task_names(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as prefect:
        runs = prefect.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [run.name for run in runs]


def test_predict_scores_a_large_input_partition_by_partition(
    trained, digits, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLOPS_PARTITION_ROWS", "500")
    monkeypatch.setenv("MLOPS_OUTPUT_ROOTS", json.dumps([str(tmp_path)]))
    source, out = tmp_path / "batch.parquet", tmp_path / "scored.csv"
    features = digits.drop(columns="target")
    features.to_parquet(source, index=False)
    state = predict_flow(data_uri=str(source), output_uri=str(out), return_state=True)
    result = state.result()
    scored = pd.read_csv(out)
    assert result["rows"] == len(scored) == 1797 and result["output"] == out.as_uri()
    assert scored["row_id"].tolist() == list(range(1797))  # in input order, numbered throughout
    mlflow.set_tracking_uri(trained["settings"].resolved_tracking_uri)
    whole = mlflow.pyfunc.load_model("models:/digits@champion").predict(features)
    assert (scored["prediction"].to_numpy() == whole["prediction"].to_numpy()).all()
    assert sum(result["predicted_counts"].values()) == 1797
    names = flow_task_names(state.state_details.flow_run_id)
    assert sorted(n for n in names if n.startswith("score rows")) == [
        "score rows 0+",
        "score rows 1000+",
        "score rows 1500+",
        "score rows 500+",
    ]


def test_predict_writes_nothing_when_a_late_partition_breaks_the_suite(
    trained, digits, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLOPS_PARTITION_ROWS", "500")
    monkeypatch.setenv("MLOPS_OUTPUT_ROOTS", json.dumps([str(tmp_path)]))
    bad = digits.drop(columns="target").astype("int64")
    bad.loc[1700, "pixel_3_3"] = 99  # in the last partition: three were scored already
    bad.to_csv(tmp_path / "batch.csv", index=False)
    with pytest.raises(DataValidationError, match="pixel_3_3"):
        predict_flow(data_uri=str(tmp_path / "batch.csv"), output_uri=str(tmp_path / "p.parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]


def test_models_listing_shows_both_versions_with_aliases_and_metrics(trained):
    rows = describe_versions(trained["settings"], "digits")
    assert [row["version"] for row in rows[:2]] == ["1", "2"]
    assert sum("champion" in row["aliases"] for row in rows) == 1
    assert all(row["metrics"]["test_accuracy"] > 0.9 for row in rows)
    assert rows[0]["family"] in ("keras_mlp", "logistic_regression", "svm", "gradient_boosting")


def test_drift_is_checked_against_the_champion_and_recorded(trained, client, tmp_path):
    first, second = trained["first"]["drift"], trained["second"]["drift"]
    assert (first["checked"], first["detected"], first["reason"]) == (
        False,
        False,
        "no champion yet",
    )
    assert second["checked"] and not second["detected"]
    # Every pixel that is not blank in all training images, and the label.
    assert second["reference"] == "champion v1" and len(second["features"]) == 62
    assert client.get_model_version("digits", "2").tags["drift_detected"] == "false"
    for result in (trained["first"], trained["second"]):
        profile = client.download_artifacts(result["run_id"], "profile/profile.json", str(tmp_path))
        profile = json.loads(Path(profile).read_text())
        assert set(profile["columns"]) >= {"pixel_0_1", "target"}
        assert "pixel_0_0" in profile["excluded"]  # blank in every image: not a feature
    report = client.download_artifacts(
        trained["second"]["run_id"], "drift/report.md", str(tmp_path)
    )
    assert "No drift against champion v1" in Path(report).read_text()


def test_drift_fail_stops_shifted_data_before_training(trained, client, digits, tmp_path):
    shifted = digits.copy()
    pixels = [c for c in digits.columns if c != "target"]
    shifted[pixels] = (shifted[pixels] + 4).clip(upper=16)  # still valid, but not the same data
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)
    before = registry_state(client)
    with pytest.raises(DriftDetectedError, match="Drift against champion v"):
        training_flow(data_uri=str(path), drift_mode="fail")
    assert registry_state(client) == before
    run = latest_run(client)
    assert run.info.status == "FAILED" and run.data.tags["drift_detected"] == "true"
    assert "keras_mlp.test_accuracy" not in run.data.metrics  # stopped before training
    local = Path(client.download_artifacts(run.info.run_id, "drift", str(tmp_path / "a")))
    verdict = json.loads((local / "result.json").read_text())
    assert verdict["detected"] and len(verdict["drifted_features"]) > 20
    assert len(list((local / "plots").glob("*.png"))) == 6
    top = verdict["drifted_features"][0]
    assert f"![{top}](plots/{plot_filename(top)})" in (local / "report.md").read_text()
    assert (local / "plots" / plot_filename(top)).exists()
    assert top in prefect_artifacts(run.data.tags["mlops.flow_run_id"])["drift-report"]


def test_sweep_searches_every_family_as_nested_runs_and_registers_the_best(trained, client):
    result = training_flow(sweep="random", epochs=3)
    assert not result["skipped"] and result["version"] == "3"  # not the same job as v1
    experiment = client.get_run(result["run_id"]).info.experiment_id
    nested = client.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'"
    )
    families = {run.data.tags["mlops.sweep.family"] for run in nested}
    assert families == {"keras_mlp", "logistic_regression", "svm", "gradient_boosting"}
    best = [run for run in nested if run.data.tags["mlops.sweep.best"] == "true"]
    assert len(best) == 1 and best[0].data.tags["mlops.sweep.family"] == result["family"]
    assert 0.8 < result["cross_validation"]["cv_accuracy_mean"] <= 1.0
    tags = client.get_model_version("digits", "3").tags
    assert tags["registration"] == "complete" and tags["model_family"] == result["family"]
