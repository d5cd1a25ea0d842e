"""A version's production metric batch after batch, as `mlops feedback` plots it on each of
its MLflow runs: every labelled batch's metric with its 95% interval, the estimate made before
its labels where there was one, against the test metric and its interval."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.evaluation.scoring import pyplot, save

# The batches a plot shows at most: the latest.
SHOWN = 60


@dataclass(frozen=True)
class Point:
    """One labelled batch: its metric, the interval's ends, and the estimate made before."""

    batch: str
    value: float
    low: float
    high: float
    estimated: float | None = None


def points(runs: list[dict], metric: str) -> list[Point]:
    """The batches of feedback ``runs`` (each: its `params` and `metrics`, oldest first) in the
    order they were scored (a batch id begins with its time), a batch fed back twice by its
    latest labels; at most the latest SHOWN."""
    latest: dict[str, Point] = {}
    for run in runs:
        batch, found = run["params"].get("batch"), run["metrics"]
        if batch is None or metric not in found:
            continue
        latest[batch] = Point(
            batch,
            found[metric],
            found.get(f"{metric}_low", found[metric]),
            found.get(f"{metric}_high", found[metric]),
            found.get(f"estimated_{metric}"),
        )
    return [latest[batch] for batch in sorted(latest)][-SHOWN:]


def plot_history(
    shown: list[Point],
    metric: str,
    test: float | None,
    test_interval: list[float] | None,
    title: str,
    path: Path,
) -> Path:
    """Each batch's production metric with its interval as error bars, the estimates as
    crosses, and the test metric as a line in its band."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(max(6.0, 0.35 * len(shown) + 3), 4.5))
    places = range(len(shown))
    values = [p.value for p in shown]
    errors = [[p.value - p.low for p in shown], [p.high - p.value for p in shown]]
    axes.errorbar(places, values, yerr=errors, fmt="o-", color="tab:blue", capsize=3,
                  linewidth=1, label=f"production {metric} (95% interval)")  # fmt: skip
    guessed = [(i, p.estimated) for i, p in enumerate(shown) if p.estimated is not None]
    if guessed:
        axes.scatter(*zip(*guessed, strict=True), marker="x", s=50, color="tab:orange",
                     label="estimated before labels", zorder=3)  # fmt: skip
    if test is not None:
        axes.axhline(test, color="grey", linestyle="--", linewidth=1, label=f"test {metric}")
        if test_interval:
            axes.axhspan(*test_interval, color="grey", alpha=0.15, label="test 95% interval")
    axes.set_xticks(list(places), [p.batch[:15] for p in shown], rotation=45, ha="right",
                    fontsize="small")  # fmt: skip
    axes.set(xlabel="batch (scored at, UTC)", ylabel=metric, title=title)
    axes.legend(loc="best", fontsize="small")
    return save(figure, path)
