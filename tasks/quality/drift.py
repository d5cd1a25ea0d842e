"""Profiles of training data, and drift statistics of new data against the champion's profile."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.errors import PlatformError
from tasks.data.features import CATEGORICAL, NUMERIC, FeatureTypes, Task, is_number
from tasks.quality import tallies

logger = logging.getLogger(__name__)


_BINS = 10
_FLOOR = 1e-4  # proportions below this are clipped so that PSI stays finite
_BINNED_ROWS = 100_000  # rows of training data a profile bins numbers from (see build_profile)
_OLD_NULL = "<null>"  # how profiles written before missing shares were kept counted empty cells
PROFILE_FILE = "profile/profile.json"
PLOTTED = 6  # drifted features drawn in a report, the most shifted first
PLOTTED_CATEGORIES = 20  # a plot's most frequent categories; the rest share one bar
# A column's missing share drifts when it moves by at least this much, and a two-proportion
# z-test's p-value is below alpha: with many rows the test alone flags changes nobody minds.
MISSING_CHANGE = 0.05


class DriftDetectedError(PlatformError):
    """New data drifted from the champion's training data and the job was told to stop."""

    def __init__(self, report: DriftReport):
        super().__init__(report.summary())
        self.report = report


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's shift: population stability index and a two-sample test of its present
    values, and its share of missing cells before and after (None: the profile predates it)."""

    feature: str
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    drifted: bool  # its values or its missing share
    missing_reference: float | None = None
    missing_new: float = 0.0
    missing_p_value: float = 1.0
    missing_drifted: bool = False

    def missing(self) -> str:
        before = "n/a" if self.missing_reference is None else f"{self.missing_reference:.1%}"
        return f"{before} -> {self.missing_new:.1%}"

    def shift(self) -> str:
        return f"missing {self.missing()}" if self.missing_drifted else f"PSI {self.psi:.2f}"

    def verdict(self) -> str:
        return "**yes**" + " (missing)" * self.missing_drifted if self.drifted else "no"


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
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it is not profiled

    @property
    def drifted(self) -> list[FeatureDrift]:
        return sorted((f for f in self.features if f.drifted), key=lambda f: -f.psi)

    def summary(self) -> str:
        if not self.checked:
            return f"Drift not checked: {self.reason}"
        if not self.detected:
            return f"No drift against {self.reference}: {self.reason}"
        shown = ", ".join(f"{f.feature} ({f.shift()})" for f in self.drifted[:8])
        more = f" and {len(self.drifted) - 8} more" if len(self.drifted) > 8 else ""
        return f"Drift against {self.reference}: {self.reason}: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["drifted_features"] = [f.feature for f in self.drifted]
        return payload

    def to_markdown(self, plots: bool = True) -> str:
        """The verdict, a table of every feature's statistics and (``plots``) links to the
        drifted features' plots."""
        lines = [f"# Drift report\n\n{self.summary()}\n"]
        if self.checked:
            lines += [
                f"A feature drifts when PSI >= {self.psi_threshold:g} and the two-sample test's "
                f"p-value < {self.alpha:g} (KS for numbers, chi-squared for categories), or when "
                f"its share of missing cells moves by at least {MISSING_CHANGE:g} with a "
                f"two-proportion z-test's p-value < {self.alpha:g}.\n",
                "| feature | kind | PSI | test | statistic | p-value | missing | drifted |",
                "|---|---|---|---|---|---|---|---|",
            ]
            ordered = sorted(self.features, key=lambda f: (-f.drifted, -f.psi))
            lines += [
                f"| {_escape(f.feature)} | {f.kind} | {f.psi:.4f} | {f.test} | "
                f"{f.statistic:.4f} | {f.p_value:.3g} | {f.missing()} | {f.verdict()} |"
                for f in ordered
            ]
            if self.excluded:
                left = "; ".join(f"{_escape(c)}: {why}" for c, why in self.excluded.items())
                lines += ["", f"Not profiled (not features): {left}."]
            shown = self.drifted[:PLOTTED] if plots else []
            lines += [
                "",
                *(f"![{_escape(f.feature)}](plots/{plot_filename(f.feature)})" for f in shown),
            ]
        return "\n".join(lines) + "\n"

    @classmethod
    def not_checked(cls, reason: str, psi_threshold: float, alpha: float) -> DriftReport:
        return cls(False, False, None, reason, psi_threshold, alpha)


def _escape(text: str) -> str:
    """A name as markdown shows it verbatim in a table cell or a link's text."""
    return re.sub(r"([\\|\[\]])", r"\\\1", " ".join(text.splitlines()))


def plot_filename(feature: str) -> str:
    """The file a feature's plot is written to: its name's letters and digits (safe in any
    file system and link), then a short hash of the whole name, so that distinct names differ."""
    letters = unicodedata.normalize("NFKD", feature).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "_", letters).strip("_")[:48] or "feature"
    return f"{slug}-{hashlib.sha256(feature.encode()).hexdigest()[:8]}.png"


def build_profile(
    frame: pd.DataFrame,
    target: str,
    sample_rows: int,
    seed: int,
    types: FeatureTypes | None = None,
    task: Task = "classification",
) -> dict:
    """What drift checks need of training data: bins and a sample per number, counts per
    category, and each column's share of missing cells.

    The label is numeric for regression and categorical for classification. The features are
    those of ``types``, by their type; the columns it excludes are named with why, not profiled.
    Without types every column is a feature: numeric if its dtype is, else categorical.
    """
    sample = frame.sample(n=min(sample_rows, len(frame)), random_state=seed)
    # A number's bins and their proportions come from at most _BINNED_ROWS rows: a decile's
    # proportion is then as close to the whole data's as any PSI that matters can tell, for a
    # fraction of the cost of binning every row (see docs/decisions.md).
    binned = frame.sample(n=_BINNED_ROWS, random_state=seed) if len(frame) > _BINNED_ROWS else frame
    columns: dict[str, dict] = {}
    excluded: dict[str, str] = dict(types.excluded) if types else {}
    for name in frame.columns:
        kind = _kind(str(name), frame[name], target, types, task)
        if kind is None:
            excluded[str(name)] = types.excluded.get(str(name), "not among the feature types")
        elif kind == NUMERIC:
            values = tallies.numbers(binned[name]).dropna().to_numpy()
            edges = _edges(values)
            columns[str(name)] = {
                "kind": NUMERIC,
                "missing": _missing_share(tallies.numbers(frame[name])),
                "edges": edges,
                "proportions": _proportions(values, edges).tolist(),
                "sample": tallies.numbers(sample[name]).dropna().tolist(),
            }
        else:
            columns[str(name)] = {
                "kind": CATEGORICAL,
                "missing": _missing_share(frame[name]),
                "counts": {k: int(v) for k, v in tallies.category_counts(frame[name]).items()},
            }
    return dict(rows=len(frame), target=target, task=task, columns=columns, excluded=excluded)


def _kind(
    name: str, column: pd.Series, target: str, types: FeatureTypes | None, task: Task
) -> str | None:
    """How a profile keeps a column: the label by the task, a feature by its type (without
    types, by its dtype); None for a column the types leave out."""
    if name == target:
        return NUMERIC if task == "regression" else CATEGORICAL
    if types is None:
        return NUMERIC if is_number(column) else CATEGORICAL
    return NUMERIC if name in types.numeric else CATEGORICAL if name in types.categorical else None


def _missing_share(column: pd.Series) -> float:
    return float(column.isna().mean()) if len(column) else 0.0


def _category_table(spec: dict, new: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The categories of either side, with their counts in the profile and in the new data
    (``new``: counts by category text)."""
    reference = tallies.by_category(
        pd.Series(spec["counts"], dtype="float64").drop(_OLD_NULL, errors="ignore")
    )
    categories = sorted(set(reference.index) | set(new.index))
    before = reference.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    after = new.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    return categories, before, after


def _edges(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return []
    quantiles = np.quantile(values, np.linspace(0, 1, _BINS + 1)[1:-1])
    return np.unique(quantiles).tolist()


def _proportions(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """The share of values in each bin (see _bin_counts)."""
    return tallies.bin_counts(values, edges) / max(values.size, 1)


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
    """Each profiled column of the new frame against the profile: its present values, and its
    share of missing cells (see judge)."""
    columns = tallies.tally(profile, frame, np.random.default_rng(seed))
    return judge(profile, columns, reference, psi_threshold, alpha)


def judge(
    profile: dict,
    columns: dict[str, tallies.ColumnTally],
    reference: str,
    psi_threshold: float,
    alpha: float,
) -> DriftReport:
    """The tallied columns of new data against the profile. A feature drifts when its PSI and
    its two-sample test agree, or when its share of missing cells moved; a column with no
    values on one side has no values to test."""
    features = []
    for name, spec in profile["columns"].items():
        if name not in columns:
            continue
        counted = columns[name]
        if spec["kind"] == NUMERIC:
            test, index, statistic, p_value = _numeric_drift(spec, counted)
        else:
            test, index, statistic, p_value = _categorical_drift(spec, counted)
        missing = _missing_drift(spec, profile["rows"], counted, alpha)
        features.append(
            FeatureDrift(
                feature=name,
                kind=spec["kind"],
                psi=round(index, 6),
                test=test,
                statistic=float(statistic),
                p_value=float(p_value),
                drifted=bool(index >= psi_threshold and p_value < alpha)
                or missing["missing_drifted"],
                **missing,
            )
        )
    drifted = sum(f.drifted for f in features)
    by_missing = sum(f.missing_drifted for f in features)
    report = DriftReport(
        checked=True,
        detected=drifted > 0,
        reference=reference,
        reason=f"{drifted} of {len(features)} features drifted"
        + (f" ({by_missing} in their share of missing cells)" if by_missing else ""),
        psi_threshold=psi_threshold,
        alpha=alpha,
        features=features,
        excluded=dict(profile.get("excluded", {})),
    )
    logger.info(report.summary())
    return report


def _numeric_drift(spec: dict, counted: tallies.ColumnTally) -> tuple[str, float, float, float]:
    """The test, PSI over the profile's bins, and the KS statistic and p-value against its
    sample."""
    from scipy import stats

    present = counted.rows - counted.missing
    if not present or not spec["sample"]:
        return "ks", 0.0, 0.0, 1.0
    index = psi(spec["proportions"], counted.counts.to_numpy() / present)
    result = stats.ks_2samp(spec["sample"], counted.sample)
    return "ks", index, result.statistic, result.pvalue


def _categorical_drift(spec: dict, counted: tallies.ColumnTally) -> tuple[str, float, float, float]:
    """The test, PSI over the categories of either side, and the chi-squared statistic and
    p-value of their counts."""
    from scipy import stats

    _, before, after = _category_table(spec, counted.counts)
    if len(before) < 2 or not before.sum() or not after.sum():
        return "chi2", 0.0, 0.0, 1.0
    index = psi(before / before.sum(), after / after.sum())
    result = stats.chi2_contingency(np.vstack([before, after]))
    return "chi2", index, result.statistic, result.pvalue


def _missing_drift(
    spec: dict, rows: int, counted: tallies.ColumnTally, alpha: float
) -> dict[str, Any]:
    """FeatureDrift's missing_* fields: the shares of missing cells in the profile and in the
    new data, and a two-proportion z-test of the two. Profiles that predate missing shares kept
    none for numbers (None), and counted a category's empty cells as "<null>"."""
    new_rows = counted.rows
    before, after, p_value = spec.get("missing"), counted.missing / max(new_rows, 1), 1.0
    if before is None and spec["kind"] == CATEGORICAL and sum(spec["counts"].values()):
        before = spec["counts"].get(_OLD_NULL, 0) / sum(spec["counts"].values())
    if before is not None and rows and new_rows:
        pooled = (before * rows + after * new_rows) / (rows + new_rows)
        error = math.sqrt(pooled * (1 - pooled) * (1 / rows + 1 / new_rows))
        p_value = math.erfc(abs(after - before) / error / math.sqrt(2)) if error else 1.0
    return {
        "missing_reference": before,
        "missing_new": after,
        "missing_p_value": p_value,
        "missing_drifted": p_value < alpha and abs(after - before) >= MISSING_CHANGE,
    }


def plot_feature(profile: dict, frame: pd.DataFrame, feature: FeatureDrift, path: Path) -> Path:
    """Reference against new distribution of one feature, as a person compares them: the
    PLOTTED_CATEGORIES most frequent categories of either side, the rest as one bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = profile["columns"][feature.feature]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if spec["kind"] == NUMERIC:
        new = tallies.numbers(frame[feature.feature]).dropna().to_numpy()
        bins = np.histogram_bin_edges(np.concatenate([spec["sample"], new]), bins=30)
        axes.hist(spec["sample"], bins=bins, density=True, alpha=0.55, label="champion's data")
        axes.hist(new, bins=bins, density=True, alpha=0.55, label="new data")
    else:
        categories, reference, new = _category_table(
            spec, tallies.category_counts(frame[feature.feature])
        )
        reference, new = reference / max(reference.sum(), 1), new / max(new.sum(), 1)
        order = np.argsort(-(reference + new), kind="stable")
        shown, rest = order[:PLOTTED_CATEGORIES], order[PLOTTED_CATEGORIES:]
        labels = [_short(categories[i]) for i in shown]
        if rest.size:
            labels.append(f"{rest.size} others")
        positions = np.arange(len(labels))
        for offset, shares, label in ((-0.2, reference, "champion's data"), (0.2, new, "new data")):
            heights = np.append(shares[shown], shares[rest].sum()) if rest.size else shares[shown]
            axes.bar(positions + offset, heights, 0.4, label=label)
        tilted = {"rotation": 45, "ha": "right"} if len(labels) > 8 else {}
        axes.set_xticks(positions, labels, **tilted)
    missing = f", missing {feature.missing()}" if feature.missing_drifted else ""
    axes.set_title(
        f"{_short(feature.feature, 40)}: PSI {feature.psi:.2f}, {feature.test} "
        f"p={feature.p_value:.2g}{missing}",
        fontsize="medium",
    )
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _short(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
