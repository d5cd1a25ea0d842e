"""The training flow: load -> validate -> types -> drift -> split -> screen leaks -> fit ->
evaluate and compress (beside them: serve-check, champion re-scored) -> decide -> register ->
promote.

Each line of the flow is one step (flows/steps/, a module per stage); what a step does lives
in tasks/.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from prefect import flow
from prefect.runtime import flow_run

from flows.approval import approval_gate
from flows.runs import FLOW_RUN_TAG
from flows.steps.data import (
    check_drift,
    load_data,
    profile_data,
    read_features,
    snapshot_data,
    split_data,
    validate_data,
)
from flows.steps.evaluation import evaluate, screen_leaks
from flows.steps.models import detect_device, train_candidates
from flows.steps.registry import (
    announce_decision,
    before_work,
    decide_promotion,
    find_identical_job,
    identify_job,
    register_and_promote,
    score_champion,
    serve_check,
)
from tasks.core.parameters import DriftMode, Epochs, Seconds, TaskChoice
from tasks.models.custom import CandidateEntry
from tasks.platform.outcomes import Lineage, TrainingResult
from tasks.platform.project import PromotionDeclaration
from tasks.registry import jobs, serving, tracking, versions


@flow(name="training")
def training_flow(
    data_uri: str = "builtin:digits",
    target: str = "target",
    task: TaskChoice = "auto",
    exclude: list[str] | None = None,
    suite: str | None = None,
    model_name: str = "digits",
    epochs: Epochs = 60,
    drift_mode: DriftMode = "warn",
    force: bool = False,
    require_approval: bool = False,
    approval_timeout_seconds: Seconds = 3600,
    sweep: Literal["none", "grid", "random"] = "none",
    cv: bool = False,
    candidates: list[CandidateEntry] | None = None,
    promotion: PromotionDeclaration | None = None,
) -> dict[str, Any]:
    """Validate the data, train the candidates, register the best and decide on champion.

    Args:
        data_uri: Data to train on: builtin:digits, builtin:breast_cancer, a .csv or .parquet
            path, or s3://bucket/key.
        target: The label column.
        task: classification or regression; auto: the suite's, else inferred from the label
            (text, booleans, few distinct whole numbers: classification).
        exclude: Columns not to learn from, beyond those the suite's feature types exclude
            (identifiers, free text, dates, constants).
        suite: Great Expectations suite name in expectations/, or a path; default: the model name.
        model_name: Registered model the new version joins.
        epochs: Most epochs of the Keras network; early stopping may end sooner.
        drift_mode: On drift from the champion's training data: warn, or fail before training.
        force: Retrain even if an identical job (same data, parameters and code) already
            registered a version, and recompute the steps a crashed run had finished.
        require_approval: A promotion to champion waits for a person's approval in the UI.
        approval_timeout_seconds: An unanswered approval request expires and does not promote.
        sweep: Search every family's hyper-parameters (grid, or random draws from it), each
            candidate x fold a parallel task (on MLOPS_DASK_ADDRESS if set); none: the defaults.
        cv: Also cross-validate the chosen candidate (MLOPS_CV_FOLDS folds: that many more
            fits) and report the mean and spread; a sweep always cross-validates.
        candidates: The candidates to fit (default: the network and the baselines): built-in
            families, or the user's own code as module:function or /path/to/file.py:function.
        promotion: The model's promotion policy (metric, margin, test, guards, tolerance,
            slices); what is left out comes from the environment.
    """
    settings, suite_path = before_work(data_uri, model_name, suite, candidates, promotion, sweep)
    exclude = sorted(exclude or [])
    run_tags = {FLOW_RUN_TAG: str(flow_run.id), "mlops.data_uri": data_uri}
    with (
        tracking.tracking_run(settings, model_name, f"train-{model_name}", run_tags) as run_id,
        contextlib.ExitStack() as scope,
    ):
        tracking.log_params(settings, run_id, {"data_uri": data_uri, "target": target,
            "suite": suite_path.stem, "epochs": epochs, "drift_mode": drift_mode})  # fmt: skip
        frame = load_data(settings, run_id, data_uri, target, suite_path.stem)
        snapshot = snapshot_data(settings, run_id, frame, data_uri, target)
        job = {"target": target, "model_name": model_name, "epochs": epochs, "sweep": sweep,
               "cv": cv, "task": task, "exclude": exclude,
               **jobs.declared_parts(candidates, promotion)}  # fmt: skip
        job_key = identify_job(settings, run_id, snapshot, suite_path, job)
        done = (
            None if force else find_identical_job(settings, run_id, model_name, job_key, snapshot)
        )
        if done:
            return done.to_json()
        warm = scope.enter_context(serving.warmed(settings))  # the serve check's, importing
        report = validate_data(settings, run_id, frame, suite_path)
        inputs, frame = read_features(settings, run_id, frame, target, suite_path, task, exclude)
        profile_data(settings, run_id, frame, target, inputs)
        drift_report = check_drift(settings, run_id, model_name, frame, drift_mode)
        splits = split_data(settings, run_id, frame, target, inputs)  # frame's rows move there
        leaks = screen_leaks(settings, run_id, splits, inputs)
        # In line: TensorFlow's import beside the validation or the fits raised the memory peak
        # of a 1M-row job from 2.45x the raw data to 2.7-3.05x (docs/decisions.md)
        device = detect_device(settings, run_id)
        candidates = train_candidates(
            settings,
            run_id,
            model_name,
            splits,
            epochs,
            job_key,
            sweep,
            cv,
            force,
            inputs,
            candidates,
        )
        # Side by side with the evaluation: the serve check (its scoring server starts in a
        # process of its own) and the champion's re-scoring; both only read the fitted model.
        served = serve_check.submit(settings, run_id, candidates, splits, inputs, warm)
        champion = score_champion.submit(settings, model_name, splits, inputs)
        candidates, plots = evaluate(settings, run_id, candidates, splits, inputs)
        decision = decide_promotion(settings, candidates, champion.result(), splits, inputs)
        served = served.result()  # a model its server cannot load asks for no approval
        decision = approval_gate(decision, require_approval, approval_timeout_seconds)
        lineage = Lineage(model_name, run_id, str(flow_run.id), data_uri, target, snapshot,
            report, drift_report, device, job_key, jobs.code_version(), inputs,
            leaks)  # fmt: skip
        version, decision = register_and_promote(
            settings, lineage, candidates, served, plots, decision, force
        )
        if version is None:  # an identical job registered while this one trained
            return find_identical_job(settings, run_id, model_name, job_key, snapshot).to_json()
        announce_decision(model_name, version.version, decision)
    holder = versions.alias_holder(settings, model_name, versions.CHAMPION)
    return TrainingResult.trained(lineage, version.version, candidates, decision, holder).to_json()
