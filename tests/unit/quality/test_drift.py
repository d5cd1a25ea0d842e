"""Drift of new data against a profile of the champion's training data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tasks.data.features import FeatureTypes
from tasks.quality.drift import (
    DriftReport,
    _proportions,
    build_profile,
    compare,
    plot_feature,
    plot_filename,
    psi,
)

MIXED_TYPES = FeatureTypes(
    numeric=("weight (kg)",),
    categorical=("colour", "grade", "member", "city/région", "product"),
    excluded={"customer_id": "identifier (a distinct value per row)"},
)


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


@pytest.fixture(scope="module")
def mixed():
    """A table as users send them: text and int-coded categories, booleans, empty cells, an
    identifier, awkward names and a numeric label."""
    rng = np.random.default_rng(0)
    rows = 3000
    weight = rng.normal(70, 12, rows)
    weight[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(rows)],
            "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]),
            "grade": rng.integers(1, 5, rows),
            "member": rng.random(rows) < 0.3,
            "city/région": pd.Series(rng.choice(["Köln", "Paris", None], rows), dtype="string"),
            "product": rng.choice([f"sku {i}" for i in range(40)], rows),
            "weight (kg)": weight,
            "price": rng.gamma(2.0, 50.0, rows),
        }
    )


@pytest.fixture(scope="module")
def mixed_profile(mixed):
    return build_profile(mixed, "price", 1000, seed=0, types=MIXED_TYPES, task="regression")


def test_a_mixed_table_does_not_drift_against_a_resample(mixed, mixed_profile):
    json.dumps(mixed_profile)
    resample = mixed.sample(frac=1, replace=True, random_state=1)
    report = compare(mixed_profile, resample, "v1", 0.2, 0.01, seed=0)
    assert not report.detected, report.summary()
    kinds = {f.feature: (f.kind, f.test) for f in report.features}
    assert kinds["price"] == ("numeric", "ks") and kinds["grade"] == ("categorical", "chi2")
    weight = next(f for f in report.features if f.feature == "weight (kg)")
    assert 0.08 < weight.missing_reference < 0.12 and not weight.missing_drifted


def test_an_identifier_is_named_but_not_profiled(mixed, mixed_profile):
    assert "customer_id" not in mixed_profile["columns"]
    assert mixed_profile["excluded"] == MIXED_TYPES.excluded
    report = compare(mixed_profile, mixed, "v1", 0.2, 0.01, seed=0)
    assert "customer_id" not in {f.feature for f in report.features}
    assert "customer_id: identifier" in report.to_markdown()


def test_a_shifted_category_mix_drifts_by_chi_squared(mixed, mixed_profile):
    shifted = mixed.copy()
    shifted["colour"] = np.random.default_rng(1).choice(
        ["red", "green", "blue"], len(mixed), p=[0.2, 0.3, 0.5]
    )
    report = compare(mixed_profile, shifted, "v1", 0.2, 0.01, seed=0)
    assert [f.feature for f in report.drifted] == ["colour"]
    assert report.drifted[0].test == "chi2" and not report.drifted[0].missing_drifted


def test_a_jump_in_missing_cells_drifts_though_the_values_do_not(mixed, mixed_profile):
    emptier = mixed.copy()
    emptier["colour"] = emptier["colour"].mask(np.random.default_rng(2).random(len(mixed)) < 0.4)
    report = compare(mixed_profile, emptier, "v1", 0.2, 0.01, seed=0)
    colour = next(f for f in report.features if f.feature == "colour")
    assert colour.missing_drifted and colour.drifted and colour.psi < 0.01
    assert colour.missing_reference == 0 and 0.35 < colour.missing_new < 0.45
    assert json.loads(json.dumps(report.to_dict()))["drifted_features"] == ["colour"]
    assert (
        "colour (missing 0.0% -> 39.7%)" in report.summary()
        and "**yes** (missing)" in report.to_markdown()
    )


def test_a_column_with_no_values_left_drifts_by_its_missing_cells(mixed, mixed_profile):
    empty = mixed.assign(**{"weight (kg)": np.nan, "colour": None})
    report = compare(mixed_profile, empty, "v1", 0.2, 0.01, seed=0)
    assert {f.feature for f in report.drifted} == {"weight (kg)", "colour"}
    assert all(f.missing_drifted and f.missing_new == 1 for f in report.drifted)


def test_categories_compare_as_text_whatever_their_dtype(mixed, mixed_profile):
    # As a CSV with an empty cell reads them: whole numbers as floats, booleans as objects.
    reread = mixed.copy()
    reread["grade"] = reread["grade"].astype("float64")
    reread.loc[0, "grade"] = np.nan
    reread["member"] = reread["member"].astype(object)
    reread.loc[0, "member"] = None
    as_text = mixed.assign(
        grade=mixed["grade"].astype(str), member=mixed["member"].astype(str).str.lower()
    )
    for frame in (reread, as_text):
        report = compare(mixed_profile, frame, "v1", 0.2, 0.01, seed=0)
        shifts = {f.feature: f.psi for f in report.features}
        assert shifts["grade"] < 0.001 and shifts["member"] < 0.001 and not report.detected
    assert set(mixed_profile["columns"]["grade"]["counts"]) == {"1", "2", "3", "4"}
    assert set(mixed_profile["columns"]["member"]["counts"]) == {"True", "False"}


def test_a_profile_written_before_missing_shares_still_compares():
    old = {
        "rows": 200,
        "target": "label",
        "columns": {
            "size": {
                "kind": "numeric",
                "edges": [2.0, 4.0, 6.0, 8.0],
                "proportions": [0.2, 0.2, 0.2, 0.2, 0.2],
                "sample": [i + 0.5 for i in range(10)],
            },
            "colour": {"kind": "categorical", "counts": {"red": 100, "blue": 60, "<null>": 40}},
            "label": {"kind": "categorical", "counts": {"0": 120, "1": 80}},
        },
    }
    frame = pd.DataFrame(
        {
            "size": np.tile(np.arange(10) + 0.5, 20),
            "colour": ["red"] * 100 + ["blue"] * 60 + [None] * 40,
            "label": [0] * 120 + [1] * 80,
        }
    )
    report = compare(old, frame, "v1", 0.2, 0.01, seed=0)
    assert not report.detected and len(report.features) == 3
    found = {f.feature: f for f in report.features}
    assert found["colour"].missing_reference == 0.2 and found["colour"].psi < 1e-9
    assert found["size"].missing_reference is None and "n/a -> 0.0%" in report.to_markdown()
    emptier = frame.assign(colour=[None] * 200)
    assert compare(old, emptier, "v1", 0.2, 0.01, seed=0).drifted[0].missing_drifted


def test_plot_file_names_are_safe_readable_and_distinct():
    names = ["a/b (kg)", "../x", "a b", "a_b", "a-b", "größe °C", "", "x" * 300]
    files = [plot_filename(name) for name in names]
    assert len(set(files)) == len(names)
    for file in files:
        assert file.endswith(".png") and file.isascii() and len(file) < 80
        assert "/" not in file and " " not in file and "(" not in file and ".." not in file
    assert files[0].startswith("a_b_kg") and files[1].startswith("x-")
    assert plot_filename("a/b (kg)") == files[0]


def test_a_report_links_its_plots_by_their_safe_names(mixed, mixed_profile):
    shifted = mixed.assign(**{"weight (kg)": mixed["weight (kg)"] + 30})
    markdown = compare(mixed_profile, shifted, "v1", 0.2, 0.01, seed=0).to_markdown()
    assert f"![weight (kg)](plots/{plot_filename('weight (kg)')})" in markdown


def test_plots_of_a_numeric_label_and_of_many_categories_are_pngs(mixed, mixed_profile, tmp_path):
    shifted = mixed.assign(
        price=mixed["price"] * 2,
        product=np.random.default_rng(3).choice([f"sku {i}" for i in range(60)], len(mixed)),
    )
    report = compare(mixed_profile, shifted, "v1", 0.2, 0.01, seed=0)
    assert {"price", "product"} <= {f.feature for f in report.drifted}
    for feature in report.drifted:
        path = plot_feature(
            mixed_profile, shifted, feature, tmp_path / plot_filename(feature.feature)
        )
        assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000
