"""Drift of new data against a profile of the champion's training data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tasks.drift import DriftReport, _proportions, build_profile, compare, plot_feature, psi


@pytest.fixture(scope="module")
def profile(digits):
    return build_profile(digits, "target", sample_rows=1000, seed=0)


def features(frame):
    return [c for c in frame.columns if c != "target"]


def test_profile_is_json_with_every_column(profile, digits):
    assert set(profile["columns"]) == set(digits.columns)
    assert profile["columns"]["target"]["kind"] == "categorical"
    assert profile["columns"]["pixel_3_3"]["kind"] == "numeric"
    assert len(profile["columns"]["pixel_3_3"]["sample"]) == 1000
    json.dumps(profile)


def test_a_large_frame_is_binned_from_a_sample_that_matches_the_whole():
    rng = np.random.default_rng(0)
    rows = 300_000
    frame = pd.DataFrame(
        {"skewed": rng.exponential(size=rows), "target": rng.integers(0, 3, size=rows)}
    )
    profile = build_profile(frame, "target", sample_rows=1000, seed=0)
    skewed = profile["columns"]["skewed"]
    counts = np.histogram(frame["skewed"], bins=[-np.inf, *skewed["edges"], np.inf])[0]
    assert np.abs(np.asarray(skewed["proportions"]) - counts / rows).max() < 0.005
    assert profile["rows"] == rows
    assert profile["columns"]["target"]["counts"] == {
        str(k): int(v) for k, v in frame["target"].value_counts().items()
    }
    report = compare(profile, frame.sample(frac=1, random_state=1), "v1", 0.2, 0.01, seed=0)
    assert not report.detected


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    same = psi([0.25] * 4, [0.25] * 4)
    small = psi([0.25] * 4, [0.3, 0.2, 0.25, 0.25])
    large = psi([0.25] * 4, [0.7, 0.1, 0.1, 0.1])
    assert same == 0 and 0 < small < 0.1 and large > 0.2


def test_a_shuffled_copy_does_not_drift(profile, digits):
    report = compare(profile, digits.sample(frac=1, random_state=5), "v1", 0.2, 0.01, seed=0)
    assert report.checked and not report.detected
    assert max(f.psi for f in report.features) < 0.01


def test_a_shifted_copy_drifts_and_names_the_features(profile, digits):
    shifted = digits.copy()
    shifted[features(digits)] = (shifted[features(digits)] + 4).clip(upper=16)
    report = compare(profile, shifted, "champion v1", 0.2, 0.01, seed=0)
    assert report.detected
    assert len(report.drifted) > 20
    assert all(f.test == "ks" and f.p_value < 0.01 for f in report.drifted)
    assert "target" not in report.to_dict()["drifted_features"]
    markdown = report.to_markdown()
    assert report.drifted[0].feature in markdown and "**yes**" in markdown


def test_a_changed_label_mix_drifts_by_chi_squared(profile, digits):
    report = compare(profile, digits[digits["target"] < 5], "v1", 0.2, 0.01, seed=0)
    target = next(f for f in report.features if f.feature == "target")
    assert target.drifted and target.test == "chi2" and target.p_value < 1e-6


def test_thresholds_are_respected(profile, digits):
    shifted = digits.copy()
    shifted["pixel_3_3"] = (shifted["pixel_3_3"] + 1).clip(upper=16)
    strict = compare(profile, shifted, "v1", 0.01, 0.5, seed=0)
    lenient = compare(profile, shifted, "v1", 50.0, 0.5, seed=0)
    assert "pixel_3_3" in strict.to_dict()["drifted_features"]
    assert not lenient.detected


def test_not_checked_is_said_plainly():
    report = DriftReport.not_checked("no champion yet", 0.2, 0.01)
    assert report.to_dict()["detected"] is False and report.to_dict()["checked"] is False
    assert report.summary() == "Drift not checked: no champion yet"


def test_drift_plot_is_a_png(profile, digits, tmp_path):
    shifted = digits.copy()
    shifted[features(digits)] = (shifted[features(digits)] + 4).clip(upper=16)
    report = compare(profile, shifted, "v1", 0.2, 0.01, seed=0)
    label = compare(profile, digits[digits["target"] < 5], "v1", 0.2, 0.01, seed=0)
    target = next(f for f in label.features if f.feature == "target")
    for feature, frame in ((report.drifted[0], shifted), (target, digits[digits["target"] < 5])):
        path = plot_feature(profile, frame, feature, tmp_path / f"{feature.feature}.png")
        assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000


def test_numbers_are_binned_by_reference_quantiles(profile):
    edges = profile["columns"]["pixel_3_3"]["edges"]
    assert edges == sorted(edges) and len(edges) <= 9
    assert np.isclose(sum(profile["columns"]["pixel_3_3"]["proportions"]), 1.0)


def test_a_value_on_an_edge_counts_in_the_bin_above_it():
    # The rule profiles of earlier versions were binned by (numpy.searchsorted, side="right"):
    # new data must be binned the same way to be compared with them.
    values = np.array([0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 5.0, 9.0])
    edges = [1.0, 2.0, 3.0]
    assert _proportions(values, edges).tolist() == [0.1, 0.2, 0.1, 0.6]
    reference = np.bincount(np.searchsorted(edges, values, side="right"), minlength=4) / 10
    assert _proportions(values, edges).tolist() == reference.tolist()
