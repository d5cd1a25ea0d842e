"""The model card: one Markdown page a reviewer reads before trusting a version."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.data import Snapshot
from tasks.drift import DriftReport
from tasks.promotion import PromotionDecision
from tasks.validation import ValidationReport


@dataclass(frozen=True)
class CardFacts:
    model: str
    version: str
    run_id: str
    family: str
    data_uri: str
    snapshot: Snapshot
    validation: ValidationReport
    drift: DriftReport
    scores: dict[str, dict[str, float]]
    cross_validation: dict[str, float]
    decision: PromotionDecision
    plots: list[str]
    device: dict[str, str | int]


def render(facts: CardFacts) -> str:
    """Markdown: data snapshot, validation outcome, metrics of every candidate, plots, decision."""
    metric_names = list(next(iter(facts.scores.values())))
    lines = [
        f"# Model card: {facts.model} v{facts.version}",
        "",
        f"- **Family:** `{facts.family}` (best of {len(facts.scores)} candidates)",
        f"- **MLflow run:** `{facts.run_id}`",
        f"- **Trained on:** {', '.join(f'{k}={v}' for k, v in facts.device.items())}",
        f"- **Decision:** {facts.decision.alias} ({facts.decision.reason})",
        "",
        "## Data",
        "",
        f"- Source: `{facts.data_uri}`",
        f"- Snapshot: `{facts.snapshot.uri}`",
        f"- sha256: `{facts.snapshot.sha256}`",
        f"- Shape: {facts.snapshot.rows} rows x {facts.snapshot.columns} columns",
        "",
        "## Validation",
        "",
        f"- {facts.validation.summary()}",
        "",
        "## Drift",
        "",
        f"- {facts.drift.summary()}",
        "",
        "## Test-set metrics",
        "",
        "| candidate | " + " | ".join(metric_names) + " |",
        "|---|" + "---|" * len(metric_names),
    ]
    for family, scores in facts.scores.items():
        marker = " (chosen)" if family == facts.family else ""
        lines.append(
            f"| {family}{marker} | " + " | ".join(f"{scores[m]:.4f}" for m in metric_names) + " |"
        )
    lines += [
        "",
        "Cross-validation of the chosen family: "
        + (
            ", ".join(f"{k} {v:.4f}" for k, v in facts.cross_validation.items())
            or "not run (`mlops train --cv` runs it)"
        ),
        "",
        "## Promotion",
        "",
        f"- Rule: {facts.decision.rule}",
        f"- Outcome: **{facts.decision.alias}**: {facts.decision.reason}",
    ]
    if facts.decision.champion is not None:
        lines.append(
            f"- Champion v{facts.decision.champion_version} on this run's test set: "
            + ", ".join(f"{k} {v:.4f}" for k, v in facts.decision.champion.items())
        )
    lines += ["", "## Plots", ""]
    lines += [f"![{plot}](../{plot})" for plot in facts.plots]
    return "\n".join(lines) + "\n"
