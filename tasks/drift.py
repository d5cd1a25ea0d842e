"""Profiles of training data, and drift statistics of new data against the champion's profile."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.errors import PlatformError

logger = logging.getLogger(__name__)


_BINS = 10
_FLOOR = 1e-4  # proportions below this are clipped so that PSI stays finite
_NEW_SAMPLE = 20_000  # rows of new data the two-sample test looks at
_BINNED_ROWS = 100_000  # rows of training data a profile bins numbers from (see build_profile)
PROFILE_FILE = "profile/profile.json"
PLOTTED = 6  # drifted features drawn in a report, the most shifted first


class DriftDetectedError(PlatformError):
    """New data drifted from the champion's training data and the job was told to stop."""

    def __init__(self, report: DriftReport):
        super().__init__(report.summary())
        self.report = report


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's shift: population stability index and a two-sample test."""

    feature: str
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """The verdict of new data against a reference profile (the champion's training data)."""

    checked: bool
    detected: bool
    reference: str | None
    reason: str
    psi_threshold: float
    alpha: float
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return sorted((f for f in self.features if f.drifted), key=lambda f: -f.psi)

    def summary(self) -> str:
        if not self.checked:
            return f"Drift not checked: {self.reason}"
        if not self.detected:
            return f"No drift against {self.reference}: {self.reason}"
        shown = ", ".join(f"{f.feature} (PSI {f.psi:.2f})" for f in self.drifted[:8])
        more = f" and {len(self.drifted) - 8} more" if len(self.drifted) > 8 else ""
        return f"Drift against {self.reference}: {self.reason}: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["drifted_features"] = [f.feature for f in self.drifted]
        return payload

    def to_markdown(self) -> str:
        lines = [f"# Drift report\n\n{self.summary()}\n"]
        if self.checked:
            lines += [
                f"A feature drifts when PSI >= {self.psi_threshold:g} and the two-sample test's "
                f"p-value < {self.alpha:g} (KS for numbers, chi-squared for categories).\n",
                "| feature | kind | PSI | test | statistic | p-value | drifted |",
                "|---|---|---|---|---|---|---|",
            ]
            ordered = sorted(self.features, key=lambda f: (-f.drifted, -f.psi))
            lines += [
                f"| {f.feature} | {f.kind} | {f.psi:.4f} | {f.test} | {f.statistic:.4f} | "
                f"{f.p_value:.3g} | {'**yes**' if f.drifted else 'no'} |"
                for f in ordered
            ]
            lines += [
                "",
                *(f"![{f.feature}](plots/{f.feature}.png)" for f in self.drifted[:PLOTTED]),
            ]
        return "\n".join(lines) + "\n"

    @classmethod
    def not_checked(cls, reason: str, psi_threshold: float, alpha: float) -> DriftReport:
        return cls(False, False, None, reason, psi_threshold, alpha)


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def build_profile(frame: pd.DataFrame, target: str, sample_rows: int, seed: int) -> dict:
    """What drift checks need of training data: bins and a sample per number, counts per category.

    The label is always categorical; so is any column that is not numeric.
    """
    sample = frame.sample(n=min(sample_rows, len(frame)), random_state=seed)
    # A number's bins and their proportions come from at most _BINNED_ROWS rows: a decile's
    # proportion is then as close to the whole data's as any PSI that matters can tell, for a
    # fraction of the cost of binning every row (see docs/decisions.md).
    binned = frame.sample(n=_BINNED_ROWS, random_state=seed) if len(frame) > _BINNED_ROWS else frame
    columns: dict[str, dict] = {}
    for name in frame.columns:
        column = frame[name]
        if _is_numeric(column) and name != target:
            values = binned[name].dropna().to_numpy(dtype="float64")
            edges = _edges(values)
            columns[str(name)] = {
                "kind": "numeric",
                "edges": edges,
                "proportions": _proportions(values, edges).tolist(),
                "sample": sample[name].dropna().astype("float64").tolist(),
            }
        else:
            counts = column.astype("string").fillna("<null>").value_counts()
            columns[str(name)] = {
                "kind": "categorical",
                "counts": {str(k): int(v) for k, v in counts.items()},
            }
    return {"rows": len(frame), "target": target, "columns": columns}


def _edges(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return []
    quantiles = np.quantile(values, np.linspace(0, 1, _BINS + 1)[1:-1])
    return np.unique(quantiles).tolist()


def _proportions(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """The share of values in each bin: below the first edge, between each two (an edge
    belongs to the bin above it), from the last one up. Counted as values below each edge,
    which is much cheaper than a bin index per value (searchsorted)."""
    below = [np.count_nonzero(values < edge) for edge in edges]
    counts = np.diff([0, *below, values.size])
    return counts / max(values.size, 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    expected = np.clip(np.asarray(expected, dtype="float64"), _FLOOR, None)
    actual = np.clip(np.asarray(actual, dtype="float64"), _FLOOR, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def compare(
    profile: dict,
    frame: pd.DataFrame,
    reference: str,
    psi_threshold: float,
    alpha: float,
    seed: int,
) -> DriftReport:
    """Each feature of the new frame against the profile; columns absent from either are skipped
    (the suite answers for schema changes)."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    features = []
    for name, spec in profile["columns"].items():
        if name not in frame.columns:
            continue
        column = frame[name]
        if spec["kind"] == "numeric" and _is_numeric(column):
            values = column.dropna().to_numpy(dtype="float64")
            index = psi(spec["proportions"], _proportions(values, spec["edges"]))
            if values.size > _NEW_SAMPLE:
                values = rng.choice(values, _NEW_SAMPLE, replace=False)
            result = stats.ks_2samp(spec["sample"], values) if values.size else None
            statistic, p_value = (result.statistic, result.pvalue) if result else (1.0, 0.0)
            test = "ks"
        else:
            counts = column.astype("string").fillna("<null>").value_counts()
            categories = sorted(set(spec["counts"]) | set(counts.index.astype(str)))
            before = np.array([spec["counts"].get(c, 0) for c in categories], dtype="float64")
            after = np.array([counts.get(c, 0) for c in categories], dtype="float64")
            index = psi(before / before.sum(), after / max(after.sum(), 1))
            statistic, p_value = _chi_squared(before, after)
            test = "chi2"
        features.append(
            FeatureDrift(
                feature=name,
                kind=spec["kind"],
                psi=round(index, 6),
                test=test,
                statistic=float(statistic),
                p_value=float(p_value),
                drifted=bool(index >= psi_threshold and p_value < alpha),
            )
        )
    drifted = sum(f.drifted for f in features)
    report = DriftReport(
        checked=True,
        detected=drifted > 0,
        reference=reference,
        reason=f"{drifted} of {len(features)} features drifted",
        psi_threshold=psi_threshold,
        alpha=alpha,
        features=features,
    )
    logger.info(report.summary())
    return report


def _chi_squared(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if len(before) < 2 or after.sum() == 0:
        return 0.0, 1.0
    result = stats.chi2_contingency(np.vstack([before, after]))
    return float(result.statistic), float(result.pvalue)


def plot_feature(profile: dict, frame: pd.DataFrame, feature: FeatureDrift, path: Path) -> Path:
    """Reference against new distribution of one feature, as a person compares them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = profile["columns"][feature.feature]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if spec["kind"] == "numeric":
        new = frame[feature.feature].dropna().to_numpy(dtype="float64")
        bins = np.histogram_bin_edges(np.concatenate([spec["sample"], new]), bins=30)
        axes.hist(spec["sample"], bins=bins, density=True, alpha=0.55, label="champion's data")
        axes.hist(new, bins=bins, density=True, alpha=0.55, label="new data")
    else:
        counts = frame[feature.feature].astype("string").fillna("<null>").value_counts()
        categories = sorted(set(spec["counts"]) | set(counts.index.astype(str)))
        reference = np.array([spec["counts"].get(c, 0) for c in categories], dtype="float64")
        new = np.array([counts.get(c, 0) for c in categories], dtype="float64")
        positions = np.arange(len(categories))
        axes.bar(positions - 0.2, reference / reference.sum(), 0.4, label="champion's data")
        axes.bar(positions + 0.2, new / max(new.sum(), 1), 0.4, label="new data")
        axes.set_xticks(positions, categories, rotation=45 if len(categories) > 8 else 0)
    axes.set_title(
        f"{feature.feature}: PSI {feature.psi:.2f}, {feature.test} p={feature.p_value:.2g}"
    )
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
