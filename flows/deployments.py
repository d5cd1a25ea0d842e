"""What `mlops serve` publishes: a retraining deployment per declared model (or the shared
`retrain`), promote, rollback, predict and feedback, their schedules and parameters, and the
automations (retraining on drift, notifying failed runs)."""

from __future__ import annotations

import contextlib
from typing import Any

from prefect.types.entrypoint import EntrypointType

from flows import signals
from flows.feedback import feedback_flow
from flows.inference import predict_flow
from flows.promotion import promote_flow, rollback_flow
from flows.training import training_flow
from tasks.platform import events
from tasks.platform.project import Project, load_project
from tasks.platform.settings import Settings

TAGS = ["mlops"]
KILL_GRACE_SECONDS = 4  # a cancelled run's process: from SIGTERM to SIGKILL
# Flow runs import `flows.training` and friends as installed modules, whatever the directory
# `mlops serve` was started from.
BY_MODULE = EntrypointType.MODULE_PATH


def build_deployments(settings: Settings, project: Project | None = None) -> list:
    """A retraining deployment per model the project declares (`retrain-NAME`: its declared
    fields as the parameters, its schedules slugged), or without a project the shared
    `retrain` (the flow's defaults, on MLOPS_RETRAIN_CRON); then promote, rollback, predict
    and feedback."""
    shared = [
        (promote_flow, "promote", "Move an alias to a version, audited."),
        (rollback_flow, "rollback", "Return champion to its previous holder."),
        (predict_flow, "predict", "Score a batch with a registered model."),
        (feedback_flow, "feedback", "Judge a recorded batch by the labels that arrived for it."),
    ]
    return [
        *retraining_deployments(settings, project),
        *(
            flow.to_deployment(
                name=name, description=description, tags=TAGS, entrypoint_type=BY_MODULE
            )
            for flow, name, description in shared
        ),
    ]


def retraining_deployments(settings: Settings, project: Project | None) -> list:
    if project is None:
        return [
            training_flow.to_deployment(
                name="retrain",
                cron=settings.retrain_cron,
                description="Validate, train, evaluate, register and promote (MLOPS_RETRAIN_CRON).",
                tags=TAGS,
                entrypoint_type=BY_MODULE,
            )
        ]
    from prefect.schedules import Cron

    return [
        training_flow.to_deployment(
            name=f"retrain-{name}",
            schedules=[
                # The slug names a schedule: a redeploy updates it instead of adding another.
                Cron(entry.cron, timezone=entry.timezone, slug=f"{name}-{number}")
                for number, entry in enumerate(declared.schedules(settings.retrain_cron))
            ],
            parameters=declared.flow_parameters(name),
            description=f"Retrain {name} as {project.path} declares it: validate, train, "
            "evaluate, register and promote.",
            tags=[*TAGS, f"model:{name}"],
            entrypoint_type=BY_MODULE,
        )
        for name, declared in project.models.items()
    ]


def drift_retrainings(project: Project | None, ids: dict[str, Any]) -> list:
    """What drift of each model starts: a run of its retraining deployment (``ids``: the
    applied deployments' ids by name), as the model declares."""
    if project is None:
        return [events.DriftRetraining(None, ids["retrain"])]
    return [
        events.DriftRetraining(
            name,
            ids[f"retrain-{name}"],
            declared.drift_retraining.enabled,
            declared.drift_retraining.cooldown,
        )
        for name, declared in project.models.items()
    ]


def deploy_to_pool(settings: Settings, pool: str, automations: bool = True) -> list[str]:
    """The deployments `mlops serve` publishes, registered on the work pool ``pool`` (created
    as a process pool if there is none) for its workers to run, with the automations; the
    deployments' names."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    project = load_project(settings)
    deployments = build_deployments(settings, project)
    ids = {d.name: d.apply(work_pool_name=pool) for d in deployments}
    if automations:
        events.publish_automations(settings, drift_retrainings(project, ids))
    return [f"{d.flow_name}/{d.name}" for d in deployments]


def serve_deployments(settings: Settings, automations: bool = True) -> None:
    """Publish the deployments (and with ``automations`` the automations, which need the
    retraining deployments' ids) and run their flow runs here until interrupted.

    Prefect's `serve()` as written there, but Ctrl-C and SIGTERM both stop the runner as its
    own SIGTERM handler does: the flow runs in flight are cancelled (their processes end, their
    state is Cancelled), the schedules paused. `serve()` alone leaves a run in flight to
    finish, or to be killed, without a state, once Python exits.
    """
    import asyncio

    from prefect.flows import _display_serve_start_message
    from prefect.runner import Runner

    project = load_project(settings)
    deployments = build_deployments(settings, project)
    if automations:
        ids = {d.name: d.apply() for d in deployments if d.name.startswith("retrain")}
        events.publish_automations(settings, drift_retrainings(project, ids))
    runner = Runner(pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(deployment)
    _display_serve_start_message(*deployments)
    # The runner installs this for SIGTERM when it starts: ours handles both signals.
    runner.handle_sigterm = signals.handle
    with signals.on_signal(lambda _: _stop(runner)):
        asyncio.run(runner.start())


def _stop(runner) -> None:
    """Have the runner cancel its flow runs and stop (from the signal handler), each run's
    process given KILL_GRACE_SECONDS after its SIGTERM instead of Prefect's 30 (polled every
    3 s), so the runs are Cancelled well before `flows.signals` ends the command."""
    if not runner.started or runner.stopping or runner._loop is None:
        raise KeyboardInterrupt  # not serving yet: nothing runs to cancel
    manager = runner._process_manager  # Prefect 3.9's; the version is pinned below 3.10
    kill = manager.kill

    async def quick_kill(flow_run_id, grace_seconds: float = 30, *, force: bool = False):
        await kill(flow_run_id, min(grace_seconds, KILL_GRACE_SECONDS), force=force)

    manager.kill = quick_kill
    runner.stopping = True
    runner.execute_in_background(runner.astop)
