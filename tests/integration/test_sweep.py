"""Fan-out on a real Dask cluster (a scheduler and two workers on loopback) and on threads:
`mlops train --sweep`'s candidates x folds, each candidate a nested MLflow run, and the
partitions of `mlops predict`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect import flow

from flows.sweep import SweepResult, refit_best, run_sweep
from tasks.data.splits import split_frame
from tasks.evaluation.sweep import SPACE, Candidate, search_space
from tasks.platform.settings import load_settings
from tasks.registry import packaging, tracking

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).with_name("dask"))
# Four candidates of two families, a few epochs: the shape of a sweep in seconds.
TINY = {
    "keras_mlp": {"hidden_units": [8, 32]},
    "logistic_regression": {"logisticregression__C": [0.001, 1.0]},
}
EPOCHS = 4


@pytest.fixture(scope="module")
def splits(digits):
    return split_frame(digits, "target", 0.2, 0.2, 42)


ROOT = Path(__file__).resolve().parents[2]


def make_certificates(folder: Path) -> Path:
    """A CA and the scheduler's, workers' and client's certificates, as the stack makes them."""
    subprocess.run(
        ["bash", str(ROOT / "infra" / "make-certs.sh"), str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture(scope="module")
def dask_cluster(free_port, prefect_api, tmp_path_factory):
    """`dask scheduler` and two `dask worker --nthreads 1` processes on loopback, with the
    stack's mutual TLS; `env` is what the platform is given to use it."""
    from distributed import Client, Security

    certs = make_certificates(tmp_path_factory.mktemp("certs") / "certs")
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    processes: list[subprocess.Popen] = []

    def start(role: str, *args: str) -> None:
        tls = ["--tls-ca-file", str(certs / "ca.crt")]
        tls += ["--tls-cert", str(certs / f"{role}.crt"), "--tls-key", str(certs / f"{role}.key")]
        command = [DASK, role, *args, *tls, "--host", "127.0.0.1", "--no-dashboard"]
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

    platform = {
        "MLOPS_DASK_ADDRESS": address,
        "MLOPS_DASK_TLS_CA_FILE": str(certs / "ca.crt"),
        "MLOPS_DASK_TLS_CERT": str(certs / "client.crt"),
        "MLOPS_DASK_TLS_KEY": str(certs / "client.key"),
    }
    security = Security(
        tls_ca_file=str(certs / "ca.crt"),
        tls_client_cert=str(certs / "client.crt"),
        tls_client_key=str(certs / "client.key"),
        require_encryption=True,
    )
    try:
        start("scheduler", "--protocol", "tls", "--port", str(port))
        for name in ("worker-a", "worker-b"):
            start("worker", address, "--nthreads", "1", "--name", name)
        with Client(address, timeout=60, security=security, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
            yield {"address": address, "client": client, "env": platform}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def use_cluster(monkeypatch, cluster) -> None:
    for name, value in cluster["env"].items():
        monkeypatch.setenv(name, value)


@flow(name="training")
def training_with_sweep(splits, candidates) -> tuple[str, SweepResult, str]:
    """What `mlops train --sweep` does around the sweep: a flow run holding an MLflow run."""
    from prefect.runtime import flow_run

    settings = load_settings()
    with tracking.tracking_run(settings, "digits", "train-digits", {}) as run_id:
        result = run_sweep(settings, run_id, "digits", splits, EPOCHS, candidates)
    return run_id, result, str(flow_run.id)


def task_runs(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as prefect:
        return prefect.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )


def test_search_space_grid_is_every_combination_and_random_a_sample_of_it():
    grid = search_space("grid", seed=1)
    assert len(grid) == 4 + 4 + 3 + 2  # network, boosting, logistic, svm
    assert {c.family for c in grid} == set(SPACE)
    assert len({c.name for c in grid}) == len(grid)
    drawn = search_space("random", seed=1, samples=2)
    assert len(drawn) == 2 * len(SPACE)
    assert {c.name for c in drawn} <= {c.name for c in grid}
    assert [c.name for c in drawn] == [c.name for c in search_space("random", seed=1, samples=2)]
    with pytest.raises(ValueError, match="grid or random"):
        search_space("bayesian", seed=1)


def sweep_task_runs(flow_run_id: str) -> list:
    return [r for r in task_runs(flow_run_id) if r.name.endswith(("fold 0", "fold 1"))]


def test_sweep_without_a_cluster_runs_its_tasks_on_local_threads_at_once(
    prefect_api, module_home, monkeypatch, splits
):
    monkeypatch.delenv("MLOPS_DASK_ADDRESS", raising=False)
    monkeypatch.setenv("MLOPS_SWEEP_WORKERS", "2")
    candidates = search_space("grid", 42, space=TINY)
    _, result, flow_run_id = training_with_sweep(splits, candidates)
    runs = sorted(sweep_task_runs(flow_run_id), key=lambda r: r.start_time)
    assert len(runs) == 8 and all(r.state.is_completed() for r in runs)
    overlapping = [a for a, b in itertools.pairwise(runs) if b.start_time < a.end_time]
    assert overlapping, "no two sweep tasks ran at the same time"
    assert result.candidate.name in {c.name for c in candidates}


def test_sweep_on_dask_runs_on_both_workers_and_logs_nested_runs(
    dask_cluster, prefect_api, module_home, monkeypatch, splits
):
    from distributed import get_task_stream
    from prefect.context import SettingsContext

    serializations = []
    serialize = SettingsContext.serialize

    def counted(self, include_secrets=True):
        serializations.append(include_secrets)
        return serialize(self, include_secrets=include_secrets)

    monkeypatch.setattr(SettingsContext, "serialize", counted)
    client = dask_cluster["client"]
    use_cluster(monkeypatch, dask_cluster)
    settings = load_settings()
    settings.prepare()
    candidates = search_space("grid", settings.seed, space=TINY)
    start = time.time()
    with get_task_stream(client) as stream:
        run_id, result, flow_run_id = training_with_sweep(splits, candidates)

    # The scheduler's own record: every candidate x fold ran there, on both workers.
    swept = [t for t in stream.data if "score_fold" in str(t["key"])]
    assert len(swept) == len(candidates) * settings.cv_folds == 8
    # Submitting them cost one serialization of Prefect's settings, not one per task.
    assert len(serializations) == 1
    names = {address: w["id"] for address, w in client.scheduler_info()["workers"].items()}
    assert {names[t["worker"]] for t in swept} == {"worker-a", "worker-b"}
    assert all(t["startstops"][0]["start"] >= start for t in swept)

    # Every candidate is a nested run of the training run; the best is marked and refitted.
    mlflow_client = MlflowClient(settings.resolved_tracking_uri)
    experiment = mlflow_client.get_experiment_by_name("digits").experiment_id
    children = mlflow_client.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    assert sorted(r.info.run_name for r in children) == sorted(c.name for c in candidates)
    assert all(r.info.status == "FINISHED" for r in children)
    by_accuracy = max(children, key=lambda r: r.data.metrics["cv_accuracy_mean"])
    (best,) = [r for r in children if r.data.tags["mlops.sweep.best"] == "true"]
    assert best.info.run_id == by_accuracy.info.run_id
    assert best.info.run_name == result.candidate.name
    folds = mlflow_client.get_metric_history(best.info.run_id, "fold.accuracy")
    assert [m.step for m in folds] == [1, 2]
    assert sum(m.value for m in folds) / 2 == pytest.approx(best.data.metrics["cv_accuracy_mean"])
    assert {r.info.run_name: r.data.params for r in children} == {
        c.name: {"family": c.family, **{k: str(v) for k, v in c.params.items()}} for c in candidates
    }

    parent = mlflow_client.get_run(run_id)
    assert parent.data.params["sweep.best"] == result.candidate.name
    assert parent.data.metrics["cv_accuracy_mean"] == result.cv["cv_accuracy_mean"]
    assert result.scores["test_accuracy"] > 0.8
    predictions = result.estimator.predict(splits.X_test)
    assert (predictions == splits.y_test.to_numpy()).mean() == result.scores["test_accuracy"]
    assert len(result.candidates) == len(candidates)

    # In the Prefect UI: the flow run shows a completed task run per candidate x fold.
    runs = sweep_task_runs(flow_run_id)
    assert len(runs) == 8 and all(r.state.is_completed() for r in runs)


def test_a_refitted_network_logs_its_curves_on_the_run_as_without_a_sweep(module_home, splits):
    settings = load_settings()
    with tracking.tracking_run(settings, "digits", "train-digits", {}) as run_id:
        estimator, _, _ = refit_best.fn(
            settings, run_id, Candidate("keras_mlp", {"hidden_units": 8}), splits, EPOCHS
        )
    mlflow_client = MlflowClient(settings.resolved_tracking_uri)
    curve = mlflow_client.get_metric_history(run_id, "keras_mlp.val_loss")
    assert [m.step for m in curve] == list(range(1, estimator.n_epochs_ + 1))
    assert [m.value for m in curve] == pytest.approx(estimator.history_["val_loss"])
    params = mlflow_client.get_run(run_id).data.params
    assert params["keras_mlp.epochs_run"] == str(estimator.n_epochs_)
    assert params["sweep.best"] == "keras_mlp[hidden_units=8]"


def test_predict_on_dask_scores_partitions_on_both_workers_in_input_order(
    dask_cluster, prefect_api, module_home, monkeypatch, digits, tmp_path
):
    from distributed import get_task_stream

    from flows.inference import predict_flow
    from flows.training import training_flow

    monkeypatch.delenv("MLOPS_DASK_ADDRESS", raising=False)
    assert training_flow(epochs=EPOCHS)["alias"] == "champion"  # a model to score with
    use_cluster(monkeypatch, dask_cluster)
    monkeypatch.setenv("MLOPS_PARTITION_ROWS", "200")
    monkeypatch.setenv("MLOPS_OUTPUT_ROOTS", json.dumps([str(tmp_path)]))
    features = digits.drop(columns="target")
    features.to_parquet(tmp_path / "batch.parquet", index=False)
    client = dask_cluster["client"]
    with get_task_stream(client) as stream:
        result = predict_flow(
            data_uri=str(tmp_path / "batch.parquet"), output_uri=str(tmp_path / "scored.parquet")
        )

    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert result["rows"] == len(scored) == 1797
    assert scored["row_id"].tolist() == list(range(1797))
    champion = packaging.load_model(load_settings(), "models:/digits@champion")
    expected = champion.predict(features)["prediction"].to_numpy()
    assert (scored["prediction"].to_numpy() == expected).all()
    # The scheduler's record: every partition was scored there, by both workers.
    partitions = [t for t in stream.data if "score_partition" in str(t["key"])]
    assert len(partitions) == 9  # 1797 rows, 200 at a time
    names = {address: w["id"] for address, w in client.scheduler_info()["workers"].items()}
    assert {names[t["worker"]] for t in partitions} == {"worker-a", "worker-b"}


def test_the_tls_cluster_refuses_a_client_without_a_certificate_of_its_ca(
    dask_cluster, module_home, monkeypatch, tmp_path
):
    from flows.runners import DaskUnreachableError, task_runner

    def connect() -> None:
        with task_runner(load_settings(), local_workers=1) as runner:
            assert runner.client.scheduler_info()["workers"]  # connecting is what is tried

    use_cluster(monkeypatch, dask_cluster)
    monkeypatch.setenv("MLOPS_DASK_ADDRESS", dask_cluster["address"].replace("tls:", "tcp:"))
    with pytest.raises(DaskUnreachableError, match=r"refused this client .*use tls://HOST:PORT"):
        connect()
    stranger = make_certificates(tmp_path / "other")  # a CA the cluster does not trust
    use_cluster(monkeypatch, dask_cluster)
    monkeypatch.setenv("MLOPS_DASK_TLS_CERT", str(stranger / "client.crt"))
    monkeypatch.setenv("MLOPS_DASK_TLS_KEY", str(stranger / "client.key"))
    with pytest.raises(DaskUnreachableError, match="refused this client"):
        connect()
    monkeypatch.delenv("MLOPS_DASK_TLS_KEY")
    with pytest.raises(DaskUnreachableError, match="is a TLS scheduler: set MLOPS_DASK_TLS_KEY"):
        connect()
