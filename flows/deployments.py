"""What `mlops serve` publishes: the four deployments, the retrain schedule, their parameters,
and the automations (retraining on drift, notifying failed runs)."""

from __future__ import annotations

from prefect.types.entrypoint import EntrypointType

from flows import signals
from flows.inference import predict_flow
from flows.promotion import promote_flow, rollback_flow
from flows.training import training_flow
from tasks.platform import events
from tasks.platform.settings import Settings

TAGS = ["mlops"]
KILL_GRACE_SECONDS = 4  # a cancelled run's process: from SIGTERM to SIGKILL
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
    retrain deployment's id) and run their flow runs here until interrupted.

    Prefect's `serve()` as written there, but Ctrl-C and SIGTERM both stop the runner as its
    own SIGTERM handler does: the flow runs in flight are cancelled (their processes end, their
    state is Cancelled), the schedules paused. `serve()` alone leaves a run in flight to
    finish, or to be killed, without a state, once Python exits.
    """
    import asyncio

    from prefect.flows import _display_serve_start_message
    from prefect.runner import Runner

    deployments = build_deployments(settings)
    if automations:
        retrain = next(d for d in deployments if d.name == "retrain")
        events.publish_automations(settings, retrain.apply())
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
