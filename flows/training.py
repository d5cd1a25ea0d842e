"""The training flow: load -> validate -> split -> fit -> evaluate -> register -> promote."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field
from threadpoolctl import threadpool_limits

from flows.results import result_storage
from flows.sweep import run_sweep
from tasks import (
    data,
    drift,
    evaluation,
    faults,
    jobs,
    model_card,
    promotion,
    registry,
    storage,
    training,
    validation,
)
from tasks.settings import Settings, load_settings
from tasks.sweep import search_space

logger = logging.getLogger(__name__)
# The MLflow run's tag naming its Prefect flow run: how a crashed run's flow run is found.
FLOW_RUN_TAG = "mlops.flow_run_id"

# Steps pass DataFrames and fitted models in memory; hashing them for a cache key is waste.
step = task(cache_policy=NO_CACHE)


def _job_step_key(context, parameters: dict[str, Any]) -> str:
    """Results of the expensive steps are keyed by the job and the candidate, so a rerun of an
    identical job (after a crash, say) reuses them instead of training again."""
    return f"{context.task.fn.__name__}-{parameters['family']}-{parameters['job_key']}"


# Fitting and cross-validation persist their results under the artifact root (see
# flows/results.py); the flow points them at the storage of its settings.
job_step = task(cache_key_fn=_job_step_key, persist_result=True)


def persisted(step_task, results, force: bool):
    """A job step storing its result in `results` (see `result_storage`); --force recomputes."""
    return step_task.with_options(result_storage=results, refresh_cache=force)


@step(name="check storage")
def check_storage(settings: Settings) -> None:
    """Fail before any work when the artifact bucket is missing, unreachable or forbidden."""
    if settings.artifacts_on_s3:
        storage.check_bucket(settings.resolved_artifact_uri)


@step(name="repair registry")
def repair_registry(settings: Settings, model_name: str) -> list[str]:
    """Finish or undo the registrations a killed run left half-done, before anything else;
    end the runs a killed process left RUNNING, in MLflow and in Prefect."""
    with registry.registry_lock(settings):
        done = registry.repair(settings, model_name)
    for run, why in registry.end_abandoned(settings, model_name):
        mark_crashed(run.data.tags.get(FLOW_RUN_TAG), why)
    return done


def mark_crashed(flow_run_id: str | None, why: str) -> None:
    """A flow run whose process died stays Running in Prefect: say it crashed, and why."""
    from prefect import get_client
    from prefect.states import Crashed

    if not flow_run_id:
        return
    try:
        with get_client(sync_client=True) as prefect_client:
            flow_run = prefect_client.read_flow_run(flow_run_id)
            if not flow_run.state or not flow_run.state.is_final():
                prefect_client.set_flow_run_state(flow_run_id, Crashed(message=why), force=True)
    except Exception as exc:  # e.g. a run of another Prefect server: the MLflow record stands
        logger.warning("Could not mark flow run %s crashed: %s", flow_run_id, exc)


@step(name="load data")
def load_data(settings: Settings, run_id: str, uri: str, target: str, suite: str) -> pd.DataFrame:
    """The rows, refused with the reason (also as the run's validation report) when they
    cannot be read or lack the label column, before anything is stored."""
    try:
        frame = data.load_frame(uri)
        data.check_target(frame, target)
        return frame
    except data.DataLoadError as exc:
        report = validation.ValidationReport.for_unreadable(suite, str(exc))
        registry.log_json(settings, run_id, report.to_dict(), "validation/result.json")
        raise


@step(name="snapshot data")
def snapshot_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, uri: str, target: str
) -> data.Snapshot:
    snapshot = data.store_snapshot(frame, settings.resolved_artifact_uri)
    registry.log_dataset(settings, run_id, frame, uri, target, snapshot)
    registry.log_params(
        settings, run_id, {"data_sha256": snapshot.sha256, "data_snapshot": snapshot.uri}
    )
    return snapshot


def publish_report(
    settings: Settings, run_id: str, key: str, markdown: str, payload: dict[str, Any]
) -> None:
    """A report in both places a person looks: the MLflow run and the Prefect flow run."""
    from prefect.artifacts import create_markdown_artifact

    registry.log_json(settings, run_id, payload, f"{key}/result.json")
    registry.log_text(settings, run_id, markdown, f"{key}/report.md")
    create_markdown_artifact(markdown=markdown, key=f"{key}-report", description=key)


@step(name="look for an identical job")
def find_identical_job(
    settings: Settings, run_id: str, model_name: str, job_key: str
) -> dict[str, Any] | None:
    """The version an identical job (same data, parameters and code) registered, if any."""
    version = registry.find_job(settings, model_name, job_key)
    if version is None:
        return None
    registry.set_run_tags(
        settings, run_id, {"mlops.skipped": "true", "mlops.skipped_for_version": version.version}
    )
    logger.info(
        "An identical job already registered %s v%s: nothing to train (--force retrains)",
        model_name,
        version.version,
    )
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "family": version.tags.get("model_family"),
        "metrics": registry.run_metrics(settings, version.run_id),
    }


@step(name="validate data")
def validate_data(
    settings: Settings, run_id: str, frame: pd.DataFrame, suite_path: Path
) -> validation.ValidationReport:
    report = validation.validate_frame(frame, suite_path)
    publish_report(settings, run_id, "validation", report.to_markdown(), report.to_dict())
    registry.set_run_tags(settings, run_id, {"validation_success": str(report.success).lower()})
    if not report.success:
        raise validation.DataValidationError(report)
    return report


@step(name="profile data")
def profile_data(settings: Settings, run_id: str, frame: pd.DataFrame, target: str) -> dict:
    """The profile every version keeps of its training data, for later drift checks."""
    profile = drift.build_profile(frame, target, settings.drift_sample_rows, settings.seed)
    registry.log_json(settings, run_id, profile, drift.PROFILE_FILE)
    return profile


@step(name="check drift")
def check_drift(
    settings: Settings, run_id: str, model_name: str, frame: pd.DataFrame, mode: str
) -> drift.DriftReport:
    """New data against the champion's training profile; `fail` stops before training."""
    champion = registry.alias_holder(settings, model_name, registry.CHAMPION)
    reference = (
        registry.read_version_json(settings, model_name, champion, drift.PROFILE_FILE)
        if champion
        else None
    )
    if reference is None:
        reason = "no champion yet" if champion is None else f"v{champion} keeps no profile"
        report = drift.DriftReport.not_checked(
            reason, settings.drift_psi_threshold, settings.drift_alpha
        )
    else:
        report = drift.compare(
            reference,
            frame,
            f"champion v{champion}",
            settings.drift_psi_threshold,
            settings.drift_alpha,
            settings.seed,
        )
    plotted = report.drifted[: drift.PLOTTED]
    if plotted:
        with tempfile.TemporaryDirectory() as scratch:
            plots = [
                drift.plot_feature(
                    reference, frame, feature, Path(scratch) / f"{feature.feature}.png"
                )
                for feature in plotted
            ]
            registry.log_files(settings, run_id, plots, "drift/plots")
    publish_report(settings, run_id, "drift", report.to_markdown(), report.to_dict())
    registry.set_run_tags(settings, run_id, {"drift_detected": str(report.detected).lower()})
    if report.detected and mode == "fail":
        raise drift.DriftDetectedError(report)
    return report


@step(name="split data")
def split_data(settings: Settings, run_id: str, frame: pd.DataFrame, target: str) -> data.Splits:
    splits = data.split_frame(
        frame, target, settings.test_size, settings.validation_size, settings.seed
    )
    sampled = min(settings.baseline_rows, len(splits.X_train))
    registry.log_params(settings, run_id, {**splits.sizes(), "baseline_rows": sampled})
    return splits


@step(name="detect device")
def detect_device(settings: Settings, run_id: str) -> training.DeviceStrategy:
    device = training.detect_device()
    registry.log_params(settings, run_id, device.as_params())
    return device


@job_step(name="fit candidate", task_run_name="fit {family}")
def fit_candidate(
    settings: Settings, family: str, splits: data.Splits, epochs: int, job_key: str
) -> Any:
    # Backed up every epoch, keyed by the job: a rerun after a crash resumes from here.
    with training.claimed(settings.checkpoint_root / job_key / family) as checkpoints:
        return training.fit_candidate(
            training.build_candidate(family, epochs, settings.seed, checkpoints),
            splits.X_train,
            splits.y_train,
            splits.X_val,
            splits.y_val,
            settings.baseline_rows,
            settings.seed,
        )


@step(name="score candidate", task_run_name="score {family}")
def score_candidate(
    settings: Settings, run_id: str, family: str, estimator: Any, splits: data.Splits
) -> tuple[dict[str, float], Any]:
    """A candidate's test-set scores (and the Keras network's curves) on the run, and its
    test-set probabilities."""
    # A baseline scores as it fits, on one thread: beside the network (see train_candidates).
    # Only there: the limit is the process's, and set and reset from two threads at once,
    # the last one out could leave it at one for the rest of the process.
    one_thread = family in training.BASELINES
    with threadpool_limits(1) if one_thread else contextlib.nullcontext():
        scores, probabilities = evaluation.test_scores(estimator, splits.X_test, splits.y_test)
    registry.log_metrics(settings, run_id, {f"{family}.{k}": v for k, v in scores.items()})
    registry.log_fit(settings, run_id, family, estimator)
    return scores, probabilities


def train_candidates(
    settings: Settings, run_id: str, splits: data.Splits, epochs: int, job_key: str, force: bool
) -> tuple[str, Any, dict[str, dict[str, float]], Any, list[str]]:
    """Fit and score the network and the baselines; the best family, its fitted estimator,
    every candidate's scores, the best one's test probabilities, and the families reused from
    a crashed run's results.

    The baselines fit and score one after another, on one thread (OpenMP's and BLAS's), on a
    worker thread beside the network's fit: TensorFlow keeps 1.4 of 2 cores busy, so they
    mostly use what it leaves (1M rows: 17.6 s for all three instead of 24.3 s in turn). The
    network fits in the flow's own thread, where Ctrl-C stops it (a worker thread would run
    on to the last epoch before the process could leave).
    """
    fit = persisted(fit_candidate, result_storage(settings), force)
    fitted, scored, after = {}, {}, []
    for family in training.BASELINES:
        fitted[family] = fit.submit(settings, family, splits, epochs, job_key, wait_for=after)
        scored[family] = score_candidate.submit(settings, run_id, family, fitted[family], splits)
        after = [scored[family]]
    network = training.KERAS_FAMILY
    states = {network: fit(settings, network, splits, epochs, job_key, return_state=True)}
    estimators = {network: states[network].result()}
    outcomes = {network: score_candidate(settings, run_id, network, estimators[network], splits)}
    for family in training.BASELINES:  # a failed fit raises its own error (its score never ran)
        estimators[family] = fitted[family].result()
        states[family] = fitted[family].state
        outcomes[family] = scored[family].result()
    reused = sorted(family for family, state in states.items() if state.name == "Cached")
    # In the candidates' order, the network first: it wins a tie.
    scores = {family: outcome[0] for family, outcome in outcomes.items()}
    best = evaluation.best_candidate(scores, settings.promotion_metric)
    # Only the best one's probabilities go on (to the plots): the others' go with this call.
    return best, estimators[best], scores, outcomes[best][1], reused


@job_step(name="cross-validate", task_run_name="cross-validate {family}")
def cross_validate(
    settings: Settings, family: str, splits: data.Splits, epochs: int, job_key: str
) -> dict[str, float]:
    return evaluation.cross_validated_accuracy(
        training.build_candidate(family, epochs, settings.seed),
        pd.concat([splits.X_train, splits.X_val]),
        pd.concat([splits.y_train, splits.y_val]),
        settings.cv_folds,
        settings.seed,
    )


@step(name="plot evaluation")
def plot_evaluation(
    settings: Settings,
    run_id: str,
    family: str,
    classes: Any,
    probabilities: Any,
    splits: data.Splits,
) -> list[str]:
    predictions = classes[probabilities.argmax(axis=1)]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = [
            evaluation.plot_confusion_matrix(
                splits.y_test,
                predictions,
                classes,
                f"{family}: confusion matrix (test set)",
                folder / "confusion_matrix.png",
            ),
            evaluation.plot_roc_curves(
                splits.y_test,
                probabilities,
                classes,
                f"{family}: one-vs-rest ROC (test set)",
                folder / "roc_curves.png",
            ),
        ]
        registry.log_files(settings, run_id, paths, "plots")
    return [f"plots/{path.name}" for path in paths]


@step(name="score champion")
def score_champion(settings: Settings, model_name: str, splits: data.Splits) -> dict[str, Any]:
    """Re-score the current champion on this run's test set (None scores if it cannot be)."""
    version = registry.alias_holder(settings, model_name, registry.CHAMPION)
    if version is None:
        return {"version": None, "scores": None, "error": None}
    try:
        model = registry.load_model(settings, f"models:/{model_name}@{registry.CHAMPION}")
        predictions = evaluation.in_chunks(model.predict, splits.X_test)
        classes = [c.removeprefix("probability_") for c in predictions.columns[1:]]
        labels = splits.y_test.astype(str).to_numpy()
        scores = evaluation.score_probabilities(
            labels, predictions.iloc[:, 1:].to_numpy(), pd.Index(classes).to_numpy()
        )
    except Exception as exc:  # a champion of another schema cannot block the record of why
        return {"version": version, "scores": None, "error": str(exc).splitlines()[0]}
    return {"version": version, "scores": scores, "error": None}


@step(name="decide promotion")
def decide_promotion(
    settings: Settings, challenger: dict[str, float], champion: dict[str, Any]
) -> promotion.PromotionDecision:
    policy = promotion.PromotionPolicy(
        metric=settings.promotion_metric,
        margin=settings.promotion_margin,
        guards=settings.guard_metrics,
        tolerance=settings.guard_tolerance,
    )
    return promotion.decide(
        policy, challenger, champion["scores"], champion["version"], champion["error"]
    )


@step(name="register and promote")
def register_and_promote(
    settings: Settings,
    run_id: str,
    model_name: str,
    facts: dict[str, Any],
    estimator: Any,
    splits: data.Splits,
) -> tuple[registry.RegisteredVersion | None, promotion.PromotionDecision]:
    """Register the chosen candidate with its lineage, write its card, move the alias.

    All or nothing: if the card, the tags or the alias fail, the new version is deleted, and
    registrations a killed process left half-done are finished or removed first. Under the
    registry lock the decision is checked again (compare-and-set): if another run moved the
    champion meanwhile, this version is registered as a challenger instead; if an identical
    job registered meanwhile, nothing is (the version is None) unless the run was forced.
    """
    faults.point(settings, "before-register")
    with registry.registry_lock(settings):
        registry.repair(settings, model_name)
        identical = registry.find_job(settings, model_name, facts["job_key"])
        if identical is not None and not facts["force"]:
            return None, facts["decision"]
        holder = registry.alias_holder(settings, model_name, registry.CHAMPION)
        decision = promotion.recheck(facts["decision"], holder)
        version = registry.register_model(
            settings,
            run_id,
            model_name,
            estimator,
            splits.features,
            splits.X_test.head(5),
            lineage_tags(facts),
            description=f"{facts['family']}: {decision.alias} ({decision.reason})",
        )
        faults.point(settings, "after-register")
        try:
            record_decision(settings, run_id, model_name, version, facts, decision)
        except BaseException:
            registry.delete_version(settings, version)
            raise
        faults.point(settings, "after-alias")
        registry.complete_registration(settings, version)
    return version, decision


def lineage_tags(facts: dict[str, Any]) -> dict[str, str]:
    tags = {
        "data_sha256": facts["snapshot"].sha256,
        "validation_suite": facts["validation"].suite,
        "validation_success": str(facts["validation"].success).lower(),
        "drift_detected": str(facts["drift"].detected).lower(),
        "flow_run_id": facts["flow_run_id"],
        "model_family": facts["family"],
        "target": facts["target"],
        "job_key": facts["job_key"],
    }
    if facts["git_commit"]:
        tags["git_commit"] = facts["git_commit"]
    return tags


def record_decision(
    settings: Settings,
    run_id: str,
    model_name: str,
    version: registry.RegisteredVersion,
    facts: dict[str, Any],
    decision: promotion.PromotionDecision,
) -> None:
    """The model card, the decision on the version and the run, and the alias it earned."""
    card = model_card.render(
        model_card.CardFacts(
            model=model_name,
            version=version.version,
            run_id=run_id,
            family=facts["family"],
            data_uri=facts["data_uri"],
            snapshot=facts["snapshot"],
            validation=facts["validation"],
            drift=facts["drift"],
            scores=facts["scores"],
            cross_validation=facts["cross_validation"],
            decision=decision,
            plots=facts["plots"],
            device=facts["device"].as_params(),
        )
    )
    registry.log_text(settings, run_id, card, "model_card/model_card.md")
    registry.log_json(settings, run_id, decision.as_dict(), "promotion/decision.json")
    decision_tags = {
        "promotion_decision": decision.alias,
        "promotion_reason": decision.reason[:5000],
        "promotion_rule": decision.rule,
        "promotion_champion_version": decision.champion_version or "none",
    }
    registry.set_version_tags(settings, model_name, version.version, decision_tags)
    registry.set_run_tags(settings, run_id, {**decision_tags, "model_version": version.version})
    registry.assign_alias(
        settings,
        model_name,
        version.version,
        decision.alias,
        actor=f"training flow run {facts['flow_run_id']}",
        reason=decision.reason,
    )


class Approval(RunInput):
    """What the Prefect UI asks a reviewer when a new version would become champion."""

    approve: bool = Field(description="Promote this version to champion?")
    reviewer: str = Field(default="", description="Who decides")
    comment: str = Field(default="", description="Why")


def approval_gate(
    decision: promotion.PromotionDecision, required: bool, timeout_seconds: int
) -> promotion.PromotionDecision:
    """Pause the flow run for a person's answer, only when it would promote and must be asked."""
    if not (required and decision.promote):
        return decision
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    logger.info(
        "Waiting up to %d s for approval in the Prefect UI: %s", timeout_seconds, decision.reason
    )
    try:
        answer = pause_flow_run(wait_for_input=Approval, timeout=timeout_seconds, key="approval")
    except FlowPauseTimeout:
        # Prefect fails an expired pause itself; say so plainly, and register nothing.
        raise promotion.ApprovalExpiredError(
            f"no answer to the approval request within {timeout_seconds} s: "
            "nothing registered, champion unchanged"
        ) from None
    return promotion.review(decision, answer.approve, answer.reviewer, answer.comment)


def skipped_result(
    settings: Settings, model_name: str, identical: dict[str, Any], sha256: str
) -> dict[str, Any]:
    """What `--json` says when an identical job already registered a version."""
    reason = (
        f"an identical job (same data sha256, parameters and code) already registered "
        f"v{identical['version']}: nothing trained; --force retrains"
    )
    return {
        "model": model_name,
        "version": identical["version"],
        "run_id": identical["run_id"],
        "family": identical["family"],
        "promoted": False,
        "alias": None,
        "decision": reason,
        "champion_version": registry.alias_holder(settings, model_name, registry.CHAMPION),
        "metrics": identical["metrics"],
        "data_sha256": sha256,
        "drift": drift.DriftReport.not_checked(
            "identical job skipped", settings.drift_psi_threshold, settings.drift_alpha
        ).to_dict(),
        "skipped": True,
        "reused": [],
    }


@flow(name="training")
def training_flow(
    data_uri: str = "builtin:digits",
    target: str = "target",
    suite: str | None = None,
    model_name: str = "digits",
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 60,
    drift_mode: Literal["warn", "fail"] = "warn",
    force: bool = False,
    require_approval: bool = False,
    approval_timeout_seconds: Annotated[int, Field(ge=1)] = 3600,
    sweep: Literal["none", "grid", "random"] = "none",
    cv: bool = False,
) -> dict[str, Any]:
    """Validate the data, train the candidates, register the best and decide on champion.

    Args:
        data_uri: Data to train on: builtin:digits, builtin:breast_cancer, a .csv or .parquet
            path, or s3://bucket/key.
        target: The label column.
        suite: Great Expectations suite name in expectations/, or a path; default: the model name.
        model_name: Registered model the new version joins.
        epochs: Most epochs of the Keras network; early stopping may end sooner.
        drift_mode: On drift from the champion's training data: warn, or fail before training.
        force: Retrain even if an identical job (same data, parameters and code) already
            registered a version, and recompute the steps a crashed run had finished.
        require_approval: A promotion to champion waits for a person's approval in the UI.
        approval_timeout_seconds: An unanswered approval request expires and does not promote.
        sweep: Search hyper-parameters (grid, or random draws from it) over every family, each
            candidate x fold a parallel task (on MLOPS_DASK_ADDRESS when set); none: the
            three default candidates.
        cv: Also cross-validate the chosen candidate (MLOPS_CV_FOLDS folds: that many more
            fits) and report the mean and spread; a sweep always cross-validates.
    """
    from prefect.runtime import flow_run

    settings = load_settings()
    settings.prepare()
    suite_path = jobs.check_inputs(settings, data_uri, model_name, suite)
    check_storage(settings)
    repair_registry(settings, model_name)
    run_tags = {FLOW_RUN_TAG: str(flow_run.id), "mlops.data_uri": data_uri}
    with registry.tracking_run(settings, model_name, f"train-{model_name}", run_tags) as run_id:
        registry.log_params(
            settings,
            run_id,
            {
                "data_uri": data_uri,
                "target": target,
                "suite": suite_path.stem,
                "epochs": epochs,
                "drift_mode": drift_mode,
            },
        )
        frame = load_data(settings, run_id, data_uri, target, suite_path.stem)
        snapshot = snapshot_data(settings, run_id, frame, data_uri, target)
        job_key = jobs.job_key(
            snapshot.sha256,
            suite_path,
            {
                "target": target,
                "model_name": model_name,
                "epochs": epochs,
                "sweep": sweep,
                "cv": cv,
                **settings.fit_knobs(),
            },
        )
        registry.set_run_tags(settings, run_id, {"job_key": job_key})
        identical = None if force else find_identical_job(settings, run_id, model_name, job_key)
        if identical:
            return skipped_result(settings, model_name, identical, snapshot.sha256)
        report = validate_data(settings, run_id, frame, suite_path)
        profile_data(settings, run_id, frame, target)
        drift_report = check_drift(settings, run_id, model_name, frame, drift_mode)
        splits = split_data(settings, run_id, frame, target)
        del frame  # the splits hold their own copy of the rows: 1M rows' peak 250 MiB lower
        device = detect_device(settings, run_id)
        if sweep == "none":
            family, estimator, scores, probabilities, reused = train_candidates(
                settings, run_id, splits, epochs, job_key, force
            )
            faults.point(settings, "after-fit")
            cross_validation = (
                persisted(cross_validate, result_storage(settings), force)(
                    settings, family, splits, epochs, job_key
                )
                if cv
                else {}
            )
        else:
            searched = run_sweep(
                settings, run_id, model_name, splits, epochs, search_space(sweep, settings.seed)
            )
            family, estimator = searched.family, searched.estimator
            scores, cross_validation, reused = {family: searched.scores}, searched.cv, []
            probabilities = searched.probabilities
        registry.log_metrics(settings, run_id, {**scores[family], **cross_validation})
        classes = estimator.classes_
        plots = plot_evaluation(settings, run_id, family, classes, probabilities, splits)
        champion = score_champion(settings, model_name, splits)
        decision = decide_promotion(settings, scores[family], champion)
        decision = approval_gate(decision, require_approval, approval_timeout_seconds)
        facts = {
            "family": family,
            "target": target,
            "data_uri": data_uri,
            "snapshot": snapshot,
            "validation": report,
            "drift": drift_report,
            "scores": scores,
            "cross_validation": cross_validation,
            "plots": plots,
            "decision": decision,
            "device": device,
            "flow_run_id": str(flow_run.id),
            "git_commit": registry.code_version(),
            "job_key": job_key,
            "force": force,
        }
        version, decision = register_and_promote(
            settings, run_id, model_name, facts, estimator, splits
        )
        if version is None:  # an identical job registered while this one trained
            identical = find_identical_job(settings, run_id, model_name, job_key)
            return skipped_result(settings, model_name, identical, snapshot.sha256)
    return {
        "model": model_name,
        "version": version.version,
        "run_id": run_id,
        "family": family,
        "promoted": decision.promote,
        "alias": decision.alias,
        "decision": decision.reason,
        "champion_version": registry.alias_holder(settings, model_name, registry.CHAMPION),
        "previous_champion_version": decision.champion_version,
        "metrics": scores[family],
        "champion_metrics": decision.champion,
        "cross_validation": cross_validation,
        "data_sha256": snapshot.sha256,
        "validation": {"suite": report.suite, "success": report.success},
        "drift": drift_report.to_dict(),
        "device": asdict(device),
        "skipped": False,
        "reused": reused,
    }
