"""From predictions to labels to retraining, as a user runs it: a champion scores a batch keyed
by an order id, the labels arrive days later, and `mlops feedback` says what the champion
really did on that batch; labels that say it lost its accuracy send the event that retrains it."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import mlops_stack, run_mlops, wait_until
from mlflow import MlflowClient

from tasks.platform import events

pytestmark = pytest.mark.slow

KEY = "order_id"


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits) -> dict:
    """Digits split once: 1,400 rows to train on; the other 397 as a batch keyed by an order
    id (no label), their labels, and the same labels with 30% of them wrong."""
    folder = tmp_path_factory.mktemp("feedback")
    order = np.random.default_rng(0).permutation(len(digits))
    train, held = digits.iloc[order[:1400]], digits.iloc[order[1400:]]
    train.to_csv(folder / "train.csv", index=False)
    batch = held.drop(columns="target")
    batch.insert(0, KEY, [f"ord-{i:05d}" for i in held.index])
    batch.to_csv(folder / "batch.csv", index=False)
    labels = pd.DataFrame({KEY: batch[KEY], "target": held["target"].to_numpy()})
    labels.to_csv(folder / "labels.csv", index=False)
    rng = np.random.default_rng(1)
    wrong = rng.random(len(labels)) < 0.3
    corrupted = labels.assign(
        target=np.where(wrong, (labels["target"] + rng.integers(1, 10, len(labels))) % 10,
                        labels["target"])
    )  # fmt: skip
    corrupted.to_csv(folder / "corrupted.csv", index=False)
    return {"folder": folder, "labels": labels, "wrong": float(wrong.mean())}


@pytest.fixture(scope="module")
def env(module_home, prefect_api) -> dict[str, str]:
    """One home and one Prefect API for the module; batches scored 150 rows at a time."""
    return {**os.environ, "PREFECT_API_URL": prefect_api, "MLOPS_PARTITION_ROWS": "150"}


def mlops(*args: str, env: dict[str, str]) -> dict:
    done = run_mlops(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"stderr": done.stderr}


@pytest.fixture(scope="module")
def champion(files, env) -> str:
    train = str(files["folder"] / "train.csv")
    return mlops("train", "--data", train, "--epochs", "3", env=env)["version"]


@pytest.fixture(scope="module")
def predicted(files, env, champion, module_home) -> dict:
    batch, out = files["folder"] / "batch.csv", module_home / "scored.parquet"
    return mlops("predict", "--data", str(batch), "--output", str(out), "--id-column", KEY, env=env)


def registry(home) -> MlflowClient:
    return MlflowClient(f"sqlite:///{home / 'mlflow.db'}")


def feedback_runs(home) -> list:
    client = registry(home)
    experiment = client.get_experiment_by_name("digits-monitoring")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def test_predict_records_the_batch_a_part_per_partition_keyed_by_the_order_id(
    files, predicted, module_home
):
    batch = predicted["batch"]
    assert predicted["id_column"] == KEY and predicted["rows"] == 397
    folder = module_home / "artifacts" / "predictions" / "digits" / batch
    parts = sorted(folder.glob("part-*.parquet"))
    assert len(parts) == 3  # 150 + 150 + 97 rows
    recorded = pd.concat(pd.read_parquet(part) for part in parts)
    assert list(recorded["key"]) == list(files["labels"][KEY])
    assert set(recorded["batch"]) == {batch} and set(recorded["model_version"]) == {"1"}
    scored = pd.read_parquet(module_home / "scored.parquet")
    assert list(scored.columns[:3]) == ["row_id", KEY, "prediction"]
    assert list(recorded["prediction"]) == list(scored["prediction"])
    tags = registry(module_home).get_model_version("digits", "1").tags
    assert tags["monitor.last_batch"] == batch


def test_the_true_labels_show_the_champion_as_good_as_on_its_test_rows(
    files, predicted, env, module_home
):
    labels = str(files["folder"] / "labels.csv")
    found = mlops("feedback", "--model", "digits", "--data", labels, env=env)
    assert (found["model"], found["version"], found["batch"]) == ("digits", "1", predicted["batch"])
    assert (found["matched"], found["unmatched"], found["duplicated"]) == (397, 0, 0)
    low, high = found["reference_intervals"]["accuracy"]
    assert low <= found["metrics"]["accuracy"] <= high
    assert found["reference_metrics"]["accuracy"] > 0.9
    production_low, production_high = found["metric_intervals"]["accuracy"]
    assert production_low < found["metrics"]["accuracy"] < production_high
    assert found["degraded"] is False
    # What predict estimated before the labels, from the champion's calibrated confidence.
    estimated = predicted["estimated_metrics"]
    assert "calibrated on" in estimated["method"]
    assert estimated["accuracy"] == pytest.approx(found["metrics"]["accuracy"], abs=0.03)
    assert predicted["estimated_drop"]["degraded"] is False
    # ... which feedback reports beside the truth, kept with the batch.
    assert found["estimated_metrics"] == estimated
    tags = registry(module_home).get_model_version("digits", "1").tags
    assert tags["feedback.degraded"] == "false" and tags["feedback.matched"] == "397"
    assert tags["feedback.batch"] == predicted["batch"]
    run = feedback_runs(module_home)[0]  # the newest
    assert run.data.metrics["accuracy"] == pytest.approx(found["metrics"]["accuracy"])
    assert run.data.metrics["estimated_accuracy"] == pytest.approx(estimated["accuracy"])
    assert run.data.params["batch"] == predicted["batch"]
    plots = [a.path for a in registry(module_home).list_artifacts(run.info.run_id, "plots")]
    assert plots == ["plots/production_accuracy.png"]


def test_labels_that_say_it_lost_accuracy_send_the_event_that_retrains_it(
    files, predicted, env, module_home, prefect_api
):
    corrupted = str(files["folder"] / "corrupted.csv")
    found = mlops("feedback", "--data", corrupted, "--batch", predicted["batch"], env=env)
    assert found["degraded"] is True
    assert found["metrics"]["accuracy"] < found["reference_metrics"]["accuracy"] - 0.2
    assert found["degradation"]["difference_interval"][1] < -0.02
    assert "Lost performance of digits v1 is recorded" in found["stderr"]  # no automation here
    assert registry(module_home).get_model_version("digits", "1").tags["feedback.degraded"] == (
        "true"
    )
    (event,) = degraded_events(prefect_api, predicted["batch"], estimated=False)
    assert event.resource["mlops.model"] == "digits" and event.resource["mlops.version"] == "1"
    assert event.resource[events.ESTIMATED] == "false"
    payload = event.payload
    assert payload["target"] == "target" and payload["batch"] == predicted["batch"]
    assert payload["training_data_uri"] == str(files["folder"] / "train.csv")
    assert payload["degraded"] is True and payload["metric"] == "accuracy"


def degraded_events(prefect_api: str, batch: str, estimated: bool) -> list:
    """The `mlops.performance.degraded` events of ``batch`` on the Prefect API, measured from
    labels or ``estimated`` before them (waited for: the API stores events shortly after)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.filters import EventFilter, EventNameFilter

    wanted = EventFilter(event=EventNameFilter(name=[events.PERFORMANCE_DEGRADED]))

    def found():
        return [
            event
            for event in client.read_events(wanted, limit=50).events
            if event.payload.get("batch") == batch and event.payload.get("estimated") is estimated
        ]

    which = "estimated" if estimated else "measured"
    with SyncPrefectClient(api=prefect_api) as client:
        return wait_until(found, 60, f"the degraded event ({which}) in the API")


def malformed(files, kind: str):
    """Labels a user might send by mistake, and the words their refusal must hold."""
    labels = files["labels"]
    if kind == "never predicted":
        return labels.assign(**{KEY: "new-" + labels[KEY]}), "none of the 397 labels"
    if kind == "wrong label type":
        return labels.assign(target="seven"), "labels the model never predicts ('seven'"
    return pd.concat([labels, labels.head(3)]), "gives 3 keys more than one label"


@pytest.mark.parametrize("kind", ["never predicted", "wrong label type", "duplicate keys"])
def test_malformed_labels_are_refused_in_one_line_and_nothing_is_recorded(
    files, predicted, env, module_home, kind
):
    frame, words = malformed(files, kind)
    path = files["folder"] / f"{kind.replace(' ', '_')}.csv"
    frame.to_csv(path, index=False)
    before = (
        len(feedback_runs(module_home)),
        registry(module_home).get_model_version("digits", "1").tags,
    )
    done = run_mlops("feedback", "--data", str(path), env=env)
    assert done.returncode == 1, done.stdout
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert words in line and "Traceback" not in done.stderr
    after = (
        len(feedback_runs(module_home)),
        registry(module_home).get_model_version("digits", "1").tags,
    )
    assert after == before


def test_on_the_production_stack_degraded_labels_start_a_retraining_awaiting_approval(
    files, tmp_path_factory, free_port
):
    """`mlops up` and `mlops serve` as a user runs them: the shared automation turns the event
    into a run of `retrain` on the version's own data and label, approval required."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.states import Cancelled

    folder = files["folder"]
    with mlops_stack(tmp_path_factory.mktemp("stack"), free_port) as stack:
        env = stack["env"]
        with SyncPrefectClient(api=stack["servers"]["prefect_api_url"]) as prefect:
            (retraining,) = wait_until(
                lambda: prefect.read_automations_by_name(events.RETRAIN_ON_DRIFT),
                300,
                "the retraining automation",
            )
            # It retrains on drift and on lost performance, measured or estimated (one event).
            assert retraining.trigger.expect == {
                events.DRIFT_DETECTED,
                events.PERFORMANCE_DEGRADED,
            }
            mlops("train", "--data", str(folder / "train.csv"), "--epochs", "3", env=env)
            out = stack["home"] / "scored.csv"
            batch = str(folder / "batch.csv")
            mlops("predict", "--data", batch, "--output", str(out), "--id-column", KEY, env=env)
            found = mlops("feedback", "--data", str(folder / "corrupted.csv"), env=env)
            assert found["degraded"] is True
            assert "no enabled" not in found["stderr"]  # something acts on it
            retrain = prefect.read_deployment_by_name(events.RETRAIN_DEPLOYMENT)
            only = DeploymentFilter(id=DeploymentFilterId(any_=[retrain.id]))

            def started():
                runs = prefect.read_flow_runs(deployment_filter=only)
                return [r for r in runs if r.parameters.get("require_approval") is True]

            (run,) = wait_until(started, 300, "a retrain run the degraded event starts")
            prefect.set_flow_run_state(run.id, Cancelled(message="test: seen"), force=True)
    assert run.parameters == {
        "model_name": "digits",
        "data_uri": str(folder / "train.csv"),
        "target": "target",
        "require_approval": True,
    }


def test_a_batch_the_champion_is_unsure_of_sends_an_estimated_drop_before_any_label(
    files, predicted, env, module_home, prefect_api
):
    """Digits blended two by two, the 40 the champion is least sure of: less sure than of any
    of its validation rows. Their estimate falls beyond the tolerance: the degraded event,
    marked estimated, whose retraining waits for a person's approval."""
    import mlflow

    pixels = pd.read_csv(files["folder"] / "batch.csv").drop(columns=KEY).to_numpy()
    rng = np.random.default_rng(2)
    blends = np.concatenate([(pixels + pixels[rng.permutation(len(pixels))]) // 2
                             for _ in range(10)])  # fmt: skip
    columns = pd.read_csv(files["folder"] / "batch.csv", nrows=0).columns.drop(KEY)
    blends = pd.DataFrame(blends, columns=columns)
    mlflow.set_tracking_uri(f"sqlite:///{module_home / 'mlflow.db'}")
    scored = mlflow.pyfunc.load_model("models:/digits@champion").predict(blends)
    unsure = blends.loc[scored.filter(like="probability_").max(axis=1).nsmallest(40).index]
    path = files["folder"] / "unsure.csv"
    unsure.assign(**{KEY: [f"blend-{i}" for i in unsure.index]}).to_csv(path, index=False)
    out = str(module_home / "unsure-scored.csv")
    found = mlops("predict", "--data", str(path), "--output", out, "--id-column", KEY, env=env)
    drop = found["estimated_drop"]
    assert drop["degraded"] is True and drop["estimated"] is True
    assert found["estimated_metrics"]["accuracy"] < drop["reference"] - 0.1
    assert "Estimated drop: accuracy" in found["stderr"]
    assert "marked estimated, sent" in found["stderr"]
    assert "no enabled automation" in found["stderr"]  # a command's own API: nothing listens
    (event,) = degraded_events(prefect_api, found["batch"], estimated=True)
    assert event.resource["mlops.model"] == "digits" and event.resource[events.ESTIMATED] == "true"
    assert event.payload["degraded"] is True and event.payload["target"] == "target"
    assert event.payload["estimated_metrics"]["accuracy"] == found["estimated_metrics"]["accuracy"]
