"""The promotion policy decides from the scores of both models on the same rows."""

from __future__ import annotations

from tasks.promotion import PromotionPolicy, decide, recheck

POLICY = PromotionPolicy(
    metric="test_accuracy", margin=0.005, guards=("test_f1_macro",), tolerance=0.01
)


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
    assert "gain +0.0100" in decision.reason


def test_a_gain_below_the_margin_makes_a_challenger():
    decision = decide(POLICY, scores(0.964, 0.964), scores(0.96, 0.96), "3")
    assert not decision.promote and decision.alias == "challenger"
    assert "below the margin 0.005" in decision.reason


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
