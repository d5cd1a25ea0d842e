"""The model card: one Markdown page a reviewer reads before trusting a version."""

from __future__ import annotations

from tasks.evaluation.compression import TFLITE, Compression
from tasks.evaluation.promotion import PromotionDecision
from tasks.platform.outcomes import CandidateResults, Lineage


def render(
    lineage: Lineage,
    version: str,
    candidates: CandidateResults,
    decision: PromotionDecision,
    plots: list[str],
) -> str:
    """Markdown: data snapshot, the features (those left out, with why; those suspected of
    leaking the label), validation outcome, metrics of every candidate, plots, decision."""
    metric_names = list(next(iter(candidates.scores.values())))
    types = lineage.inputs.types
    lines = [
        f"# Model card: {lineage.model} v{version}",
        "",
        f"- **Task:** {lineage.inputs.task} of `{lineage.target}`",
        f"- **Family:** `{candidates.family}` (best of {len(candidates.scores)} candidates)",
        f"- **MLflow run:** `{lineage.run_id}`",
        f"- **Trained on:** {', '.join(f'{k}={v}' for k, v in lineage.device.as_params().items())}",
        f"- **Decision:** {decision.alias} ({decision.reason})",
        "",
        "## Data",
        "",
        f"- Source: `{lineage.data_uri}`",
        f"- Snapshot: `{lineage.snapshot.uri}`",
        f"- sha256: `{lineage.snapshot.sha256}`",
        f"- Shape: {lineage.snapshot.rows} rows x {lineage.snapshot.columns} columns",
        f"- Features: {len(types.numeric)} numeric, {len(types.categorical)} categorical",
        "- Left out of the model: "
        + ("; ".join(f"`{name}`: {why}" for name, why in types.excluded.items()) or "none"),
        *(
            f"- **Suspected leak:** {leak.describe(f'`{leak.feature}`')}; check how it is "
            f"recorded, or leave it out with `--exclude {leak.feature}`"
            for leak in lineage.leaks
        ),
        "- Preprocessing inside the model: "
        + (
            "missing numbers imputed (median, with missing-indicators), categories one-hot "
            "(the network, linear models) or native (gradient boosting); unseen categories "
            "go to an out-of-vocabulary bucket"
            if lineage.inputs.encoded
            else "none (complete numbers; the network scales them itself)"
        ),
        "",
        "## Validation",
        "",
        f"- {lineage.validation.summary()}",
        "",
        "## Drift",
        "",
        f"- {lineage.drift.summary()}",
        "",
        "## Test-set metrics",
        "",
        "| candidate | " + " | ".join(metric_names) + " |",
        "|---|" + "---|" * len(metric_names),
    ]
    for family, scores in candidates.scores.items():
        marker = " (chosen)" if family == candidates.family else ""
        lines.append(
            f"| {family}{marker} | " + " | ".join(f"{scores[m]:.4f}" for m in metric_names) + " |"
        )
    if candidates.entry is not None:
        lines += ["", f"`{candidates.family}` is the user's own code: `{candidates.entry.entry}`."]
    if candidates.failed:
        lines += ["", "Candidates whose code failed (not scored):", ""]
        lines += [f"- `{family}`: {why}" for family, why in candidates.failed.items()]
    if candidates.intervals:
        lines += [
            "",
            f"95% intervals of `{candidates.family}`'s scores (bootstrap over the test rows): "
            + ", ".join(
                f"{metric} {low:.4f} to {high:.4f}"
                for metric, (low, high) in candidates.intervals.items()
            ),
        ]
    lines += [
        "",
        "Cross-validation of the chosen family: "
        + (
            ", ".join(f"{k} {v:.4f}" for k, v in candidates.cross_validation.items())
            or "not run (`mlops train --cv` runs it)"
        ),
        "",
        "## Slices of the test rows",
        "",
        *_slices(candidates.slices),
        "",
        "## What drives the predictions",
        "",
        *_explanation(candidates.explanation),
        "",
        "## Compressed for efficient inference",
        "",
        _compression(candidates.compression, f"{lineage.model} --version {version}"),
        "",
        "## Promotion",
        "",
        f"- Rule: {decision.rule}",
        f"- Outcome: **{decision.alias}**: {decision.reason}",
    ]
    if decision.comparison:
        c = decision.comparison
        low, high = c["difference_interval"]
        lines.append(
            f"- Paired with the champion on the same rows ({c['test']}, test mode "
            f"`{decision.test}`): {c['metric']} difference {c['difference']:+.4f}, 95% interval "
            f"{low:+.4f} to {high:+.4f}, p = {c['p_value']:.3g}"
        )
    if decision.champion is not None:
        lines.append(
            f"- Champion v{decision.champion_version} on this run's test set: "
            + ", ".join(f"{k} {v:.4f}" for k, v in decision.champion.items())
        )
    lines += ["", "## Plots", ""]
    lines += [f"![{plot}](../{plot})" for plot in plots]
    return "\n".join(lines) + "\n"


def _compression(compression: Compression | None, exported: str) -> str:
    """The compact variant against the model as trained, on the test rows, and how to get it."""
    if compression is None:
        return "- Not made for this version."
    line = f"- {compression.summary()} (on the test rows)."
    if compression.kept:
        return line + f" `mlops export {exported}` writes it."
    if compression.format == TFLITE:
        return line + f" `mlops export {exported} --format keras` writes the float32 network."
    return line


def _explanation(explanation: dict) -> list[str]:
    """The most important features as a table (permutation importance on the test rows)."""
    if not explanation:
        return ["Not computed for this version."]
    lines = [
        f"Permutation importance on the test rows: how much `{explanation['metric']}` drops "
        "when a feature's values are shuffled (95% interval over the shuffles).",
        "",
        "| feature | importance | interval |",
        "|---|---|---|",
    ]
    for feature in explanation["features"]:
        low, high = feature["interval"]
        lines.append(
            f"| {feature['feature']} | {feature['importance']:.4f} | {low:.4f} to {high:.4f} |"
        )
    return lines


def _slices(slices: list[dict]) -> list[str]:
    """Metrics per value of each categorical feature and per class, with their row counts."""
    if not slices:
        return ["No categorical features or classes to slice by."]
    metrics = [k for k in slices[0] if k not in ("feature", "value", "rows")]
    lines = ["| feature | value | rows | " + " | ".join(metrics) + " |"]
    lines.append("|---|---|---|" + "---|" * len(metrics))
    lines += [
        f"| {s['feature']} | {s['value']} | {s['rows']} | "
        + " | ".join(f"{s[m]:.4f}" for m in metrics)
        + " |"
        for s in slices
    ]
    return lines
