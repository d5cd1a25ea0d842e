"""The approval gate: a promotion to champion paused for a person's answer in the Prefect UI."""

from __future__ import annotations

import logging

from prefect.input import RunInput
from pydantic import Field

from tasks.evaluation import promotion

logger = logging.getLogger(__name__)


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

    paired = decision.comparison
    paired = (
        f"; against the champion on the same rows: difference {paired['difference']:+.4f}, "
        f"95% interval {paired['difference_interval']}, p = {paired['p_value']:.3g}"
        if paired
        else ""
    )
    logger.info(
        "Waiting up to %d s for approval in the Prefect UI: %s%s",
        timeout_seconds,
        decision.reason,
        paired,
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
