"""The plot of a version's production metric batch after batch: the batches in the order they
were scored, each by its latest labels, with the estimate made before them where there was one."""

from __future__ import annotations

import pytest

from tasks.evaluation import history


def run(batch: str, accuracy: float, estimated: float | None = None) -> dict:
    metrics = {"accuracy": accuracy, "accuracy_low": accuracy - 0.02,
               "accuracy_high": accuracy + 0.02}  # fmt: skip
    if estimated is not None:
        metrics["estimated_accuracy"] = estimated
    return {"params": {"batch": batch}, "metrics": metrics}


def test_batches_in_the_order_scored_each_by_its_latest_labels(tmp_path):
    runs = [  # oldest run first, as tracking.experiment_runs gives them
        run("20260102T000000Z-bbbbbb", 0.95, estimated=0.94),
        run("20260101T000000Z-aaaaaa", 0.97),
        run("20260102T000000Z-bbbbbb", 0.70, estimated=0.94),  # its labels, corrected
        {"params": {}, "metrics": {}},  # no batch: not a feedback run
    ]
    shown = history.points(runs, "accuracy")
    assert [(p.batch[:8], p.value, p.estimated) for p in shown] == [
        ("20260101", 0.97, None),
        ("20260102", 0.70, 0.94),
    ]
    assert (shown[1].low, shown[1].high) == pytest.approx((0.68, 0.72))
    path = history.plot_history(
        shown, "accuracy", 0.96, [0.94, 0.98], "digits v1", tmp_path / "production.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_at_most_the_latest_batches_are_shown():
    runs = [run(f"202601{day:02d}T000000Z-abcdef", 0.9) for day in range(1, 29)] * 3
    runs += [run(f"202602{day:02d}T000000Z-abcdef", 0.9) for day in range(1, 29)]
    shown = history.points(runs, "accuracy")
    assert len(shown) == min(history.SHOWN, 56)
    assert shown[-1].batch.startswith("20260228")
