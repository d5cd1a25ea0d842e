"""What `mlops serve` publishes: the four deployments, the retrain schedule, their parameters,
and the automations (retraining on drift, notifying failed runs)."""

from __future__ import annotations

from prefect.types.entrypoint import EntrypointType

from flows.inference import predict_flow
from flows.promotion import promote_flow, rollback_flow
from flows.training import training_flow
from tasks.platform import events
from tasks.platform.settings import Settings

TAGS = ["mlops"]
# Flow runs import `flows.training` and friends as installed modules, whatever the directory
# `mlops serve` was started from.
BY_MODULE = EntrypointType.MODULE_PATH


def build_deployments(settings: Settings) -> list:
    """retrain (the training flow on a cron schedule), promote, rollback and predict."""
    deployments = [
        (training_flow, "retrain", settings.retrain_cron, "Validate, train, evaluate, register "
         "and promote (MLOPS_RETRAIN_CRON)."),
        (promote_flow, "promote", None, "Move an alias to a version, audited."),
        (rollback_flow, "rollback", None, "Return champion to its previous holder."),
        (predict_flow, "predict", None, "Score a batch with a registered model."),
    ]  # fmt: skip
    return [
        flow.to_deployment(
            name=name, cron=cron, description=description, tags=TAGS, entrypoint_type=BY_MODULE
        )
        for flow, name, cron, description in deployments
    ]


def serve_deployments(settings: Settings, automations: bool = True) -> None:
    """Publish the deployments (and with ``automations`` the automations, which need the
    retrain deployment's id) and run their flow runs here until interrupted."""
    from prefect import serve

    deployments = build_deployments(settings)
    if automations:
        retrain = next(d for d in deployments if d.name == "retrain")
        events.publish_automations(settings, retrain.apply())
    serve(*deployments, print_starting_message=True)
