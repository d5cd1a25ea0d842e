"""What `mlops serve` publishes: the four deployments, the retrain schedule, their parameters."""

from __future__ import annotations

from prefect.types.entrypoint import EntrypointType

from flows.inference import predict_flow
from flows.promotion import promote_flow, rollback_flow
from flows.training import training_flow
from tasks.settings import Settings

TAGS = ["mlops"]
# Flow runs import `flows.training` and friends as installed modules, whatever the directory
# `mlops serve` was started from.
BY_MODULE = EntrypointType.MODULE_PATH


def build_deployments(settings: Settings) -> list:
    """retrain (the training flow on a cron schedule), promote, rollback and predict."""
    return [
        training_flow.to_deployment(
            name="retrain",
            entrypoint_type=BY_MODULE,
            cron=settings.retrain_cron,
            tags=TAGS,
            description="Validate, train, evaluate, register and promote (MLOPS_RETRAIN_CRON).",
        ),
        promote_flow.to_deployment(
            name="promote",
            entrypoint_type=BY_MODULE,
            tags=TAGS,
            description="Move an alias to a version, audited.",
        ),
        rollback_flow.to_deployment(
            name="rollback",
            entrypoint_type=BY_MODULE,
            tags=TAGS,
            description="Return champion to its previous holder.",
        ),
        predict_flow.to_deployment(
            name="predict",
            entrypoint_type=BY_MODULE,
            tags=TAGS,
            description="Score a batch with a registered model.",
        ),
    ]


def serve_deployments(settings: Settings) -> None:
    """Publish the deployments and run their flow runs here until interrupted."""
    from prefect import serve

    serve(*build_deployments(settings), print_starting_message=True)
