"""Prefect flow runs as a person sees them: reports on the run's Artifacts tab (and beside it
on the MLflow run), and a run whose process died marked Crashed."""

from __future__ import annotations

import logging
from typing import Any

from tasks.core.errors import causes
from tasks.platform.settings import Settings
from tasks.registry import tracking

logger = logging.getLogger(__name__)
# The MLflow run's tag naming its Prefect flow run: how a crashed run's flow run is found.
FLOW_RUN_TAG = "mlops.flow_run_id"


def publish_report(
    settings: Settings, run_id: str, key: str, markdown: str, payload: dict[str, Any]
) -> None:
    """A report in both places a person looks: the MLflow run and the Prefect flow run."""
    from prefect.artifacts import create_markdown_artifact

    tracking.log_json(settings, run_id, payload, f"{key}/result.json")
    tracking.log_text(settings, run_id, markdown, f"{key}/report.md")
    create_markdown_artifact(markdown=markdown, key=f"{key}-report", description=key)


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


def refused_by_prefect(settings: Settings, exc: BaseException) -> str | None:
    """A Prefect API that refused this client (401, 403), said plainly; None otherwise."""
    import httpx

    for seen in causes(exc):
        if isinstance(seen, httpx.HTTPStatusError) and seen.response.status_code in (401, 403):
            fix = (
                "PREFECT_API_AUTH_STRING is not the server's user:password"
                if settings.prefect_api_auth_string
                else "set PREFECT_API_AUTH_STRING to the server's user:password"
            )
            response = seen.response
            return (
                f"the Prefect API at {settings.resolved_prefect_api_url} refused this client "
                f"({response.status_code} {response.reason_phrase}): {fix}"
            )
    return None
