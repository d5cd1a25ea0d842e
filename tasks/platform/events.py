"""Prefect events and automations: what the platform announces (drift, promotions) and what
the Prefect server does about it (retraining on drift, a webhook on a failed run)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tasks.core.errors import first_line
from tasks.evaluation.feedback import Degradation, Feedback
from tasks.evaluation.promotion import PromotionDecision
from tasks.platform.settings import Settings
from tasks.quality.monitoring import BatchCheck

logger = logging.getLogger(__name__)

DRIFT_DETECTED = "mlops.drift.detected"
# A champion's production metric significantly worse than its test metric: measured from
# labels fed back, or estimated before them (marked by ESTIMATED, on the resource and in the
# payload). The same automations as drift retrain on it, approval required: an estimate is
# blind where a model is wrong with confidence, so a person confirms it.
PERFORMANCE_DEGRADED = "mlops.performance.degraded"
ESTIMATED = "mlops.estimated"
PROMOTED = "mlops.model.promoted"
REJECTED = "mlops.model.rejected"
RETRAIN_ON_DRIFT = "mlops-retrain-on-drift"
NOTIFY_ON_FAILURE = "mlops-notify-on-failure"
NOTIFY_BLOCK = "mlops-notify"
RETRAIN_DEPLOYMENT = "training/retrain"
# The platform's flows, by the names their runs carry: a failure of any of them notifies.
PLATFORM_FLOWS = ["training", "predict", "feedback", "promote", "rollback"]
# The webhook's body: what failed, where, why, and a link; "text" is what Slack shows.
FAILURE_PAYLOAD = """{
  "text": {{ ("Prefect flow run " ~ flow.name ~ "/" ~ flow_run.name ~ " is "
    ~ flow_run.state.name ~ ": " ~ flow_run.state.message ~ " " ~ (flow_run|ui_url))|tojson }},
  "flow": {{ flow.name|tojson }},
  "run": {{ flow_run.name|tojson }},
  "run_id": {{ (flow_run.id|string)|tojson }},
  "state": {{ flow_run.state.name|tojson }},
  "message": {{ flow_run.state.message|tojson }},
  "url": {{ (flow_run|ui_url)|tojson }}
}"""


def checked_cron(value: str) -> str:
    """A cron string as Prefect's schedules accept it (ValueError naming it otherwise)."""
    from prefect._internal.schemas.validators import validate_cron_string

    return validate_cron_string(value)


def version_resource(model: str, version: str) -> dict[str, str]:
    """A registered model version as a Prefect event's resource."""
    return {
        "prefect.resource.id": f"mlops.model.{model}.{version}",
        "prefect.resource.name": f"{model} v{version}",
        "mlops.model": model,
        "mlops.version": version,
    }


def emit(
    event: str,
    model: str,
    version: str,
    payload: dict[str, Any],
    labels: dict[str, str] | None = None,
) -> None:
    """Send one event about a version to the Prefect API (its event feed, its automations);
    ``labels`` join the version's resource."""
    from prefect.events import emit_event

    resource = version_resource(model, version) | (labels or {})
    emit_event(event=event, resource=resource, payload=payload)
    logger.info("Event %s sent for %s v%s", event, model, version)


def announce_decision(model: str, version: str, decision: PromotionDecision) -> None:
    """`mlops.model.promoted` when the version became champion, else `mlops.model.rejected`."""
    event = PROMOTED if decision.alias == "champion" else REJECTED
    emit(event, model, version, decision.as_dict())


def announce_drift(check: BatchCheck, details: dict[str, str], flow_run_id: str) -> None:
    """On drift, `mlops.drift.detected` for the version, with the check's statistics and
    ``details`` (the batch, and what retraining reads); a warning when nothing will act on it."""
    if not check.detected:
        return
    model, version = check.reference.model, check.reference.version
    emit(DRIFT_DETECTED, model, version, {**check.payload(), **details, "flow_run_id": flow_run_id})
    missing = drift_listener_missing(model)
    if missing:
        logger.warning(
            "Drift of %s is recorded (event %s, the version's monitor.* tags), but %s",
            check.reference.name,
            DRIFT_DETECTED,
            missing,
        )


def announce_degraded(feedback: Feedback, details: dict[str, str], flow_run_id: str) -> None:
    """On lost performance, `mlops.performance.degraded` for the version, marked measured,
    with the labels' statistics and ``details`` (the labels, and what retraining reads:
    `target`, `training_data_uri`); a warning when nothing will act on it."""
    if not feedback.degraded:
        return
    model, version = feedback.model, feedback.version
    payload = {**feedback.payload(), **details, "flow_run_id": flow_run_id}
    missing = _send_degraded(model, version, feedback.degradation, payload)
    if missing:
        logger.warning(
            "Lost performance of %s v%s is recorded (event %s, the version's feedback.* tags), "
            "but %s",
            model,
            version,
            PERFORMANCE_DEGRADED,
            missing,
        )


def announce_estimated_drop(
    model: str, version: str, drop: Degradation | None, details: dict[str, Any]
) -> None:
    """When a batch's estimated metric is surely worse than the test metric (judged as labels
    are), `mlops.performance.degraded` for the version, marked estimated, with the judgement
    and ``details`` (the batch, its estimate, what retraining reads): the automations that
    retrain on lost performance react to it too, approval required. A warning either way."""
    if drop is None or not drop.degraded:
        return
    payload = {**drop.as_dict(), "summary": drop.describe(), **details}
    missing = _send_degraded(model, version, drop, payload)
    logger.warning(
        "%s, of %s v%s (event %s, marked estimated, sent%s; `mlops feedback` with the batch's "
        "labels confirms it)%s",
        drop.describe(),
        model,
        version,
        PERFORMANCE_DEGRADED,
        "" if missing else ": a retraining awaits approval",
        f", but {missing}" if missing else "",
    )


def _send_degraded(
    model: str, version: str, degradation: Degradation, payload: dict[str, Any]
) -> str | None:
    """`mlops.performance.degraded` for the version, marked measured or estimated (`estimated`
    in the payload, `mlops.estimated` on the resource); why nothing will retrain the model on
    it, None when something will."""
    estimated = degradation.estimated
    marked = {ESTIMATED: str(estimated).lower()}
    emit(PERFORMANCE_DEGRADED, model, version, {**payload, "estimated": estimated}, marked)
    return drift_listener_missing(model)


def drift_listener_missing(model: str) -> str | None:
    """Why nothing on the Prefect API will retrain ``model`` on a drift or degraded event (no
    automation, or no deployment for it to run: the model's own `retrain-NAME`, else
    `retrain`); None when both are there."""
    from prefect import get_client

    own = DriftRetraining(model, None)
    try:
        with get_client(sync_client=True) as client:
            automations = [
                *client.read_automations_by_name(own.automation_name),
                *client.read_automations_by_name(RETRAIN_ON_DRIFT),
            ]
            if not any(automation.enabled for automation in automations):
                return (
                    f"the Prefect API has no enabled automation ({own.automation_name!r} or "
                    f"{RETRAIN_ON_DRIFT!r}) to retrain {model} on it (a command's own temporary "
                    "API never has one: start `mlops up`, then `mlops serve`)"
                )
            try:
                client.read_deployment_by_name(own.deployment_name)
            except Exception:
                client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
    except Exception as exc:  # a missing deployment is a 404; any failure leaves the event sent
        return (
            f"the Prefect API has no {own.deployment_name!r} or {RETRAIN_DEPLOYMENT!r} "
            f"deployment to retrain {model} ({first_line(exc)})"
        )
    return None


@dataclass(frozen=True)
class DriftRetraining:
    """What drift of a model starts: a run of ``deployment_id`` (with approval required), at
    most once per ``cooldown`` seconds (default MLOPS_RETRAIN_COOLDOWN); ``model`` None: of
    any model, through the shared `retrain` deployment (no project file). Not ``enabled``:
    drift is only reported."""

    model: str | None
    deployment_id: Any
    enabled: bool = True
    cooldown: int | None = None

    @property
    def automation_name(self) -> str:
        return RETRAIN_ON_DRIFT if self.model is None else f"{RETRAIN_ON_DRIFT}-{self.model}"

    @property
    def deployment_name(self) -> str:
        return RETRAIN_DEPLOYMENT if self.model is None else f"{RETRAIN_DEPLOYMENT}-{self.model}"


def publish_automations(settings: Settings, retrainings: list[DriftRetraining]) -> list[str]:
    """Create, or update in place (by name), the platform's automations; their names. Those
    of retraining on drift that no longer apply (a model gone from the project, or declared
    with retrain_on_drift off) are deleted.

    Retraining on drift is rate-limited per model by the trigger's own window: a reactive
    trigger of threshold 1 fires on the first drift event, and the server then opens its next
    window where that one ends (the cooldown later), ignoring the events before it
    (prefect/server/events/triggers.py). So windows of that length follow each other, and each
    starts at most one retraining. The failure webhook is set up only with MLOPS_NOTIFY_URL.
    """
    wanted = [_retrain_on_drift(settings, r) for r in retrainings if r.enabled]
    _delete_retrainings_but({automation.name for automation in wanted})
    automations = list(wanted)
    if settings.notify_url is not None:
        automations.append(_notify_on_failure(settings))
    else:
        logger.info("MLOPS_NOTIFY_URL is not set: failed runs notify nobody")
    return [_upsert(automation) for automation in automations]


def _delete_retrainings_but(kept: set[str]) -> None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            if automation.name.startswith(RETRAIN_ON_DRIFT) and automation.name not in kept:
                client.delete_automation(automation.id)
                logger.info("Automation %r deleted (no longer declared)", automation.name)


def _retrain_on_drift(settings: Settings, retraining: DriftRetraining):
    from datetime import timedelta

    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    cooldown = settings.retrain_cooldown if retraining.cooldown is None else retraining.cooldown
    if retraining.model is None:  # the shared deployment: told which model, on what data
        data_uri = settings.training_data_uri or "{{ event.payload.training_data_uri }}"
        match = {"prefect.resource.id": "mlops.model.*"}
        parameters = {
            "model_name": "{{ event.resource['mlops.model'] }}",
            "data_uri": data_uri,
            "target": "{{ event.payload.target }}",
        }
        which = "its model"
    else:  # the model's own deployment: its declared parameters stand
        match = {"prefect.resource.id": "mlops.model.*", "mlops.model": retraining.model}
        parameters = {}
        which = retraining.model
    return AutomationCore(
        name=retraining.automation_name,
        description=f"Drift in a batch prediction, or lost performance (measured from labels, "
        f"or estimated before them), retrains {which}, with approval required; "
        f"at most once per {cooldown} s per model.",
        trigger=EventTrigger(
            expect={DRIFT_DETECTED, PERFORMANCE_DEGRADED},
            match=match,
            for_each={"mlops.model"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(seconds=cooldown),
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=retraining.deployment_id,
                parameters={**parameters, "require_approval": True},
            )
        ],
    )


def _notify_on_failure(settings: Settings):
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    webhook = Webhook(url=settings.notify_url, headers={"Content-Type": "application/json"})
    block_id = webhook.save(NOTIFY_BLOCK, overwrite=True)
    return AutomationCore(
        name=NOTIFY_ON_FAILURE,
        description="A Failed or Crashed run of the platform's flows posts to MLOPS_NOTIFY_URL.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "flow",
                "prefect.resource.name": PLATFORM_FLOWS,
            },
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=FAILURE_PAYLOAD)],
    )


def _upsert(automation) -> str:
    """The automation created, or the one of its name updated (a duplicate left by a race of
    two `mlops serve` is removed)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(automation.name)
        if not existing:
            client.create_automation(automation)
            logger.info("Automation %r created", automation.name)
            return automation.name
        kept, *duplicates = existing
        client.update_automation(kept.id, automation)
        for duplicate in duplicates:
            client.delete_automation(duplicate.id)
        logger.info("Automation %r updated", automation.name)
    return automation.name
