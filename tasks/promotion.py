"""The promotion policy: does a new version beat the champion on the same held-out data?"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from tasks.errors import PlatformError


class ApprovalExpiredError(PlatformError):
    """Nobody answered a promotion's approval request in time."""


@dataclass(frozen=True)
class PromotionPolicy:
    """Primary metric to beat by a margin; guard metrics that may not regress past a tolerance."""

    metric: str
    margin: float
    guards: tuple[str, ...]
    tolerance: float

    def describe(self) -> str:
        guards = ", ".join(self.guards) or "none"
        return (
            f"promote when there is no champion, or when {self.metric} >= champion + "
            f"{self.margin:g} and no guard metric ({guards}) drops by more than {self.tolerance:g}"
        )


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome, with both sets of scores and the rule that produced it."""

    promote: bool
    alias: str
    reason: str
    rule: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    champion_version: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    policy: PromotionPolicy,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    champion_error: str | None = None,
) -> PromotionDecision:
    """Apply the policy to scores of the challenger and the champion on this run's test set."""
    verdict = {"rule": policy.describe(), "challenger": challenger, "champion": champion}
    verdict["champion_version"] = champion_version

    def outcome(promote: bool, reason: str) -> PromotionDecision:
        alias = "champion" if promote else "challenger"
        return PromotionDecision(promote=promote, alias=alias, reason=reason, **verdict)

    if champion_version is None:
        return outcome(True, "no champion yet")
    if champion is None:
        return outcome(
            False,
            f"champion v{champion_version} could not be scored on this data: {champion_error}",
        )
    gain = challenger[policy.metric] - champion[policy.metric]
    if gain < policy.margin:
        return outcome(
            False,
            f"{policy.metric} {challenger[policy.metric]:.4f} vs champion "
            f"{champion[policy.metric]:.4f}: gain {gain:+.4f} is below the margin "
            f"{policy.margin:g}",
        )
    for guard in policy.guards:
        drop = champion[guard] - challenger[guard]
        if drop > policy.tolerance:
            return outcome(
                False,
                f"guard {guard} regressed by {drop:.4f} (tolerance {policy.tolerance:g})",
            )
    return outcome(
        True,
        f"{policy.metric} {challenger[policy.metric]:.4f} vs champion "
        f"{champion[policy.metric]:.4f} (gain {gain:+.4f}); guards within tolerance",
    )


def review(
    decision: PromotionDecision, approved: bool, reviewer: str, comment: str
) -> PromotionDecision:
    """A person's answer to a promotion: approved promotes; rejected keeps a challenger."""
    who = reviewer or "a reviewer"
    note = f" ({comment})" if comment else ""
    if approved:
        return replace(decision, reason=f"approved by {who}{note}; {decision.reason}")
    return replace(
        decision,
        promote=False,
        alias="challenger",
        reason=f"rejected by {who}{note}; {decision.reason}",
    )


def recheck(decision: PromotionDecision, holder: str | None) -> PromotionDecision:
    """Compare-and-set: a decision to promote stands only if the champion it beat still holds
    the alias; otherwise another run moved it meanwhile and this version is a challenger."""
    if not decision.promote or holder == decision.champion_version:
        return decision
    compared = f"v{decision.champion_version}" if decision.champion_version else "no champion"
    return replace(
        decision,
        promote=False,
        alias="challenger",
        reason=f"champion changed to v{holder} during this run (compared with {compared}); "
        "not promoted",
    )
