"""The promotion policy decides from the scores of both models on the same rows."""

from __future__ import annotations

import math

import pytest

from tasks.evaluation.promotion import PromotionPolicy, decide, improvement, recheck

POLICY = PromotionPolicy(
    metric="test_accuracy", margin=0.005, guards=("test_f1_macro",), tolerance=0.01
)
# Margin and tolerance of errors are shares of the champion's: 1% lower RMSE, MAE at most 5% up.
REGRESSION = PromotionPolicy(metric="test_rmse", margin=0.01, guards=("test_mae",), tolerance=0.05)


def scores(accuracy: float, f1: float) -> dict[str, float]:
    return {"test_accuracy": accuracy, "test_f1_macro": f1}


def test_first_version_becomes_champion():
    decision = decide(POLICY, scores(0.9, 0.9), None, None)
    assert (decision.promote, decision.alias, decision.reason) == (
        True,
        "champion",
        "no champion yet",
    )


def test_a_clear_gain_with_guards_held_promotes():
    decision = decide(POLICY, scores(0.97, 0.965), scores(0.96, 0.96), "3")
    assert decision.promote and decision.alias == "champion"
    assert decision.champion_version == "3" and decision.champion == scores(0.96, 0.96)
    assert decision.reason == (
        "test_accuracy 0.9700 vs champion 0.9600 (gain +0.0100); guards within tolerance"
    )


def test_a_gain_below_the_margin_makes_a_challenger():
    decision = decide(POLICY, scores(0.964, 0.964), scores(0.96, 0.96), "3")
    assert not decision.promote and decision.alias == "challenger"
    assert decision.reason == (
        "test_accuracy 0.9640 vs champion 0.9600: gain +0.0040 is below the margin 0.005"
    )


def test_a_worse_model_never_becomes_champion():
    decision = decide(POLICY, scores(0.90, 0.90), scores(0.96, 0.96), "3")
    assert decision.alias == "challenger"


def test_a_regressed_guard_blocks_promotion_despite_the_gain():
    decision = decide(POLICY, scores(0.99, 0.94), scores(0.96, 0.96), "3")
    assert (
        decision.alias == "challenger"
        and "guard test_f1_macro regressed by 0.0200" in decision.reason
    )


def test_an_unscorable_champion_is_kept_and_the_reason_recorded():
    decision = decide(POLICY, scores(0.99, 0.99), None, "3", "missing columns ['x']")
    assert decision.alias == "challenger"
    assert "champion v3 could not be scored on this data: missing columns ['x']" in decision.reason


def test_the_rule_is_written_out_in_words():
    rule = decide(POLICY, scores(0.9, 0.9), None, None).rule
    assert rule == (
        "promote when there is no champion, or when test_accuracy >= champion + 0.005 "
        "and no guard metric (test_f1_macro) drops by more than 0.01"
    )


def test_a_stale_promotion_becomes_a_challenger():
    """Compare-and-set: another run moved the champion after this one compared."""
    decision = decide(POLICY, scores(0.97, 0.97), scores(0.96, 0.96), "3")
    assert recheck(decision, "3") == decision
    stale = recheck(decision, "4")
    assert (stale.promote, stale.alias) == (False, "challenger")
    assert stale.reason == "champion changed to v4 during this run (compared with v3); not promoted"
    first = decide(POLICY, scores(0.9, 0.9), None, None)
    assert recheck(first, "1").reason.endswith("(compared with no champion); not promoted")
    challenger = decide(POLICY, scores(0.90, 0.90), scores(0.96, 0.96), "3")
    assert recheck(challenger, "4") == challenger


def errors(rmse: float, mae: float) -> dict[str, float]:
    return {"test_rmse": rmse, "test_mae": mae, "test_r2": 0.5}


def test_a_lower_rmse_beats_the_champion():
    decision = decide(REGRESSION, errors(3.10, 2.5), errors(3.25, 2.5), "3")
    assert decision.promote and decision.alias == "champion"
    assert decision.reason == "test_rmse 3.1 vs champion 3.25 (-4.6%); guards within tolerance"
    worse = decide(REGRESSION, errors(3.40, 2.4), errors(3.25, 2.5), "3")
    assert not worse.promote and "(+4.6%)" in worse.reason


@pytest.mark.parametrize("scale", [0.001, 1, 1000])
def test_the_margin_of_an_error_is_a_share_of_the_champions_whatever_its_units(scale):
    champion = errors(3.25 * scale, 2.5 * scale)
    near = decide(REGRESSION, errors(3.23 * scale, 2.5 * scale), champion, "3")
    assert near.alias == "challenger"
    assert near.reason.endswith("(-0.6%): short of the margin (1% lower)")
    clear = decide(REGRESSION, errors(3.2 * scale, 2.5 * scale), champion, "3")
    assert clear.alias == "champion"


def test_a_worse_mae_past_the_tolerance_blocks_a_lower_rmse():
    decision = decide(REGRESSION, errors(3.0, 2.7), errors(3.25, 2.5), "3")
    assert decision.alias == "challenger"
    assert decision.reason == (
        "guard test_mae 2.7 vs champion 2.5 (+8.0%) regressed past the tolerance 5%"
    )
    within = decide(REGRESSION, errors(3.0, 2.6), errors(3.25, 2.5), "3")  # +4%
    assert within.alias == "champion"


def test_the_regression_rule_says_margin_and_tolerance_are_shares():
    assert REGRESSION.describe() == (
        "promote when there is no champion, or when test_rmse <= champion - 1% of it and no "
        "guard metric (test_mae) rises by more than 5% of the champion's"
    )
    mixed = PromotionPolicy("test_rmse", 0.0, ("test_r2", "test_mae"), 0.02)
    assert mixed.describe().endswith(
        "no guard metric (test_r2) drops by more than 0.02 and no guard metric (test_mae) "
        "rises by more than 2% of the champion's"
    )


def test_improvement_is_positive_when_the_new_value_is_better():
    assert improvement("test_accuracy", 0.9, 0.8) == pytest.approx(0.1)
    assert improvement("test_rmse", 9.0, 10.0) == pytest.approx(0.1)  # 10% lower
    assert improvement("test_mae", 11.0, 10.0) == pytest.approx(-0.1)
    assert improvement("test_rmse", 0.0, 0.0) == 0 and improvement("test_rmse", 1, 0) == -math.inf
