"""The promotion policy: does a new version beat the champion on the same held-out data?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from tasks.core.errors import PlatformError

# Metrics where less is better: errors, in the target's units, and spreads across folds. A
# margin or tolerance on one of them is a share of the champion's value (0.05: 5% of it), so
# that one policy means the same for a target in dollars as for one in millimetres; on the
# others (accuracy, F1, R², all between 0 and 1) it is an absolute difference.
LOWER_IS_BETTER = frozenset(
    {"test_rmse", "test_mae", "cv_rmse_mean", "cv_rmse_std", "cv_accuracy_std"}
)


class ApprovalExpiredError(PlatformError):
    """Nobody answered a promotion's approval request in time."""


def lower_is_better(metric: str) -> bool:
    """Whether less of the metric is better (an error), so a candidate wins with the least."""
    return metric in LOWER_IS_BETTER


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse): the difference, or for a
    lower-is-better metric the fall as a share of ``old`` (0.05: 5% lower)."""
    if not lower_is_better(metric):
        return new - old
    if old == 0:  # a perfect champion: only another perfect score is not worse
        return 0.0 if new == 0 else -math.inf
    return (old - new) / abs(old)


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


@dataclass(frozen=True)
class PromotionPolicy:
    """Primary metric to beat by a margin; guard metrics that may not regress past a tolerance.

    For a lower-is-better metric (LOWER_IS_BETTER: RMSE, MAE) the margin and the tolerance
    are shares of the champion's value; for the others, absolute differences.
    """

    metric: str
    margin: float
    guards: tuple[str, ...]
    tolerance: float
    # point: the scores alone; non_inferior: promote unless the paired comparison's interval
    # lies wholly below -margin (significantly worse); superior: only when it lies wholly
    # above the margin (significantly better).
    test: str = "point"

    def describe(self) -> str:
        if lower_is_better(self.metric):
            primary = f"{self.metric} <= champion - {_percent(self.margin)} of it"
        else:
            primary = f"{self.metric} >= champion + {self.margin:g}"
        rising = [g for g in self.guards if lower_is_better(g)]
        dropping = ", ".join(g for g in self.guards if not lower_is_better(g))
        guards = []
        if dropping or not rising:
            guards.append(
                f"no guard metric ({dropping or 'none'}) drops by more than {self.tolerance:g}"
            )
        if rising:
            guards.append(
                f"no guard metric ({', '.join(rising)}) rises by more than "
                f"{_percent(self.tolerance)} of the champion's"
            )
        if self.test != "point":
            how = (
                "not significantly worse" if self.test == "non_inferior" else "significantly better"
            )
            primary = f"{self.metric} is {how} than the champion's (margin {self.margin:g})"
        return f"promote when there is no champion, or when {primary} and {' and '.join(guards)}"


def _versus(metric: str, new: float, old: float) -> str:
    """The challenger's value against the champion's; for a lower-is-better metric, in the
    target's units whatever they are, with its change in percent."""
    if lower_is_better(metric):
        return f"{metric} {new:.6g} vs champion {old:.6g} ({-improvement(metric, new, old):+.1%})"
    return f"{metric} {new:.4f} vs champion {old:.4f}"


def _regressed_guard(
    policy: PromotionPolicy, challenger: dict[str, float], champion: dict[str, float]
) -> str | None:
    """Why the first guard metric that got worse by more than the tolerance blocks; None."""
    for guard in policy.guards:
        new, old = challenger[guard], champion[guard]
        drop = -improvement(guard, new, old)
        if drop <= policy.tolerance:
            continue
        if lower_is_better(guard):
            return (
                f"guard {_versus(guard, new, old)} regressed past the tolerance "
                f"{_percent(policy.tolerance)}"
            )
        return f"guard {guard} regressed by {drop:.4f} (tolerance {policy.tolerance:g})"
    return None


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
    # The paired comparison with the champion on the same rows (tasks/evaluation/evidence.py):
    # metric, test, difference, difference_interval, p_value; None without a champion scored.
    comparison: dict | None = None
    test: str = "point"

    def as_dict(self) -> dict:
        return asdict(self)

    def evidence(self) -> dict:
        """What `--json` calls `promotion`: the rule, its test mode (MLOPS_PROMOTION_TEST), and
        the paired comparison: metric, test (the statistical one), difference, its interval
        and p-value (None without a champion scored on the same rows)."""
        empty = dict.fromkeys(("metric", "test", "difference", "difference_interval", "p_value"))
        return {"rule": self.rule, "mode": self.test, **(self.comparison or empty)}


def decide(
    policy: PromotionPolicy,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    champion_error: str | None = None,
    comparison: dict | None = None,
) -> PromotionDecision:
    """Apply the policy to scores of the challenger and the champion on this run's test set
    (and, for the non_inferior and superior tests, to their paired ``comparison``)."""
    verdict = {"rule": policy.describe(), "challenger": challenger, "champion": champion}
    verdict |= {"champion_version": champion_version, "comparison": comparison}
    verdict["test"] = policy.test

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
    new, old = challenger[policy.metric], champion[policy.metric]
    gain = improvement(policy.metric, new, old)
    versus = _versus(policy.metric, new, old)
    relative = lower_is_better(policy.metric)
    if policy.test != "point" and comparison is not None:
        low, high = comparison["difference_interval"]
        evidence = (
            f"{versus}; difference {comparison['difference']:+.4f}, 95% interval "
            f"{low:+.4f} to {high:+.4f}, p = {comparison['p_value']:.3g} ({comparison['test']})"
        )
        if policy.test == "superior" and low <= policy.margin:
            return outcome(False, f"not significantly better: {evidence}")
        if policy.test == "non_inferior" and high < -policy.margin:
            return outcome(False, f"significantly worse: {evidence}")
        regressed = _regressed_guard(policy, challenger, champion)
        if regressed is not None:
            return outcome(False, regressed)
        return outcome(True, f"{evidence}; guards within tolerance")
    if gain < policy.margin:
        if relative:
            return outcome(
                False, f"{versus}: short of the margin ({_percent(policy.margin)} lower)"
            )
        return outcome(False, f"{versus}: gain {gain:+.4f} is below the margin {policy.margin:g}")
    regressed = _regressed_guard(policy, challenger, champion)
    if regressed is not None:
        return outcome(False, regressed)
    shown = versus if relative else f"{versus} (gain {gain:+.4f})"
    return outcome(True, f"{shown}; guards within tolerance")


def blocked(decision: PromotionDecision, why: str) -> PromotionDecision:
    """A decision to promote turned down by a later check (a slice that regressed)."""
    if not decision.promote:
        return decision
    return replace(decision, promote=False, alias="challenger", reason=why)


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
