"""The drift engine: PSI against values worked out by hand, KS against scipy, profiles of awkward columns."""

import math

import numpy as np
import pytest
from scipy import stats

from monitoring.engine import drift


def test_psi_matches_the_hand_computed_value():
    # (0.5-0.25)·ln(0.5/0.25) + 0 + (0.25-0.5)·ln(0.25/0.5) = 0.5·ln 2
    assert drift.psi([0.25, 0.25, 0.5], [0.5, 0.25, 0.25]) == pytest.approx(0.5 * math.log(2), abs=1e-12)


def test_psi_raises_an_empty_bin_to_epsilon_on_either_side():
    expected, actual = [0.5, 0.5, 0.0], [0.4, 0.5, 0.1]
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert drift.psi(expected, actual) == pytest.approx(by_hand, abs=1e-12)
    assert drift.psi(actual, expected) == pytest.approx(by_hand, abs=1e-12)  # symmetric
    assert drift.psi(expected, actual, epsilon=1e-6) > drift.psi(expected, actual)


def test_psi_of_equal_shares_is_zero_and_bins_must_match():
    assert drift.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([0.5, 0.5], [1.0])


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [(5, 7, 0.0), (20, 20, 0.8), (30, 45, 0.3), (200, 333, 0.1), (1000, 1000, 0.05), (2000, 5000, 0.08), (3, 10_000, 1.0)],
)
def test_ks_matches_scipy_where_scipy_is_exact(n1, n2, shift):
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    statistic, pvalue = drift.ks_2samp(a, b)
    expected = stats.ks_2samp(a, b)
    assert statistic == expected.statistic
    assert pvalue == pytest.approx(expected.pvalue, abs=1e-9)


ASYMPTOTIC = [(50, 20_000, 0.3, 5e-4), (20_000, 2000, 0.05, 5e-5), (100_000, 2000, 0.03, 5e-5)]


@pytest.mark.parametrize(("n1", "n2", "shift", "tolerance"), ASYMPTOTIC)
def test_ks_matches_scipy_asymptotic_p_value_within_tolerance(n1, n2, shift, tolerance):
    rng = np.random.default_rng(n1)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    statistic, pvalue = drift.ks_2samp(a, b)
    expected = stats.ks_2samp(a, b)
    assert statistic == expected.statistic
    assert pvalue == pytest.approx(expected.pvalue, abs=tolerance)


def test_ks_on_tied_integer_samples_matches_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 5, 300), rng.integers(1, 6, 250)
    statistic, pvalue = drift.ks_2samp(a, b)
    expected = stats.ks_2samp(a, b)
    assert statistic == expected.statistic
    assert pvalue == pytest.approx(expected.pvalue, abs=1e-9)


def test_ks_refuses_an_empty_sample():
    with pytest.raises(ValueError, match="non-empty"):
        drift.ks_2samp([], [1.0])


@pytest.mark.parametrize(
    ("value", "status"), [(0.0, "stable"), (0.099, "stable"), (0.1, "moderate"), (0.25, "moderate"), (0.2501, "significant")]
)
def test_status_follows_the_usual_psi_thresholds(value, status):
    assert drift.status_for(value) == status


def test_status_thresholds_are_configurable():
    assert drift.status_for(0.05, moderate=0.01, significant=0.04) == "significant"
    assert drift.status_for(None) == "insufficient"


# --- profiles and comparisons ---------------------------------------------------------------------


def test_numeric_profile_has_decile_bins_a_missing_bin_and_a_bounded_sorted_sample():
    rng = np.random.default_rng(0)
    values = list(rng.uniform(0, 100, 10_000)) + [None, float("nan"), float("inf"), "not a number"]
    profile = drift.profile_feature("temperature", "number", values)
    assert profile["kind"] == "numeric"
    assert len(profile["cuts"]) == 9
    assert len(profile["proportions"]) == 11
    assert profile["proportions"][:10] == pytest.approx([0.1 * 10_000 / 10_004] * 10, abs=1e-3)
    assert profile["proportions"][-1] == pytest.approx(4 / 10_004)
    assert sum(profile["proportions"]) == pytest.approx(1.0)
    assert len(profile["sample"]) == drift.REFERENCE_SAMPLE
    assert profile["sample"] == sorted(profile["sample"])
    assert drift.bin_labels(profile)[0].startswith("< ") and drift.bin_labels(profile)[-1] == "missing"


def test_in_distribution_values_are_stable_and_shifted_ones_significant():
    rng = np.random.default_rng(1)
    profile = drift.profile_feature("pressure", "number", rng.normal(5, 1, 5000))
    same = drift.compare(profile, rng.normal(5, 1, 1000))
    assert same["status"] == "stable" and same["psi"] < 0.1
    assert same["ks_pvalue"] > 0.01
    current = rng.normal(6, 1, 1000)
    shifted = drift.compare(profile, current)
    assert shifted["status"] == "significant" and shifted["psi"] > 0.25
    assert shifted["ks_statistic"] == stats.ks_2samp(current, profile["sample"]).statistic
    assert shifted["ks_pvalue"] < 1e-6
    assert shifted["bins"]["labels"][-1] == "missing" and len(shifted["bins"]["actual"]) == len(profile["proportions"])


def test_numbers_that_went_missing_are_drift():
    profile = drift.profile_feature("x", "number", np.arange(1000.0))
    result = drift.compare(profile, [None] * 300 + list(np.arange(0.0, 1000.0, 1.5)))
    assert result["bins"]["actual"][-1] == pytest.approx(300 / (300 + 667), abs=1e-6)
    assert result["status"] == "significant"


def test_constant_column_gets_bins_below_at_and_above_its_value():
    profile = drift.profile_feature("speed", "integer", [7] * 500)
    assert profile["proportions"] == [0.0, 1.0, 0.0, 0.0]
    assert drift.compare(profile, [7] * 100)["psi"] == 0.0
    above = drift.compare(profile, [8] * 100)
    assert above["status"] == "significant"
    assert above["bins"]["actual"] == [0.0, 0.0, 1.0, 0.0]


def test_a_value_holding_most_rows_gets_its_own_bin():
    profile = drift.profile_feature("defects", "integer", [0] * 950 + list(range(1, 51)))
    moved = drift.compare(profile, [0] * 500 + [1] * 500)
    assert moved["status"] == "significant"


def test_unseen_categories_go_to_other_and_are_flagged():
    profile = drift.profile_feature("line", "string", ["L1"] * 600 + ["L2"] * 400)
    assert profile["categories"] == ["L1", "L2"]
    assert profile["proportions"] == [0.6, 0.4, 0.0, 0.0]
    same = drift.compare(profile, ["L1"] * 60 + ["L2"] * 40)
    assert same["psi"] == pytest.approx(0.0, abs=1e-12)
    unseen = drift.compare(profile, ["L1"] * 50 + ["L2"] * 30 + ["L3"] * 20)
    by_hand = (0.5 - 0.6) * math.log(0.5 / 0.6) + (0.3 - 0.4) * math.log(0.3 / 0.4) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert unseen["psi"] == pytest.approx(by_hand, abs=1e-9)
    assert unseen["status"] == "significant"
    assert unseen["ks_statistic"] is None and unseen["ks_pvalue"] is None


def test_categories_beyond_the_top_share_one_other_bin():
    values = [f"c{i % 30}" for i in range(3000)]
    profile = drift.profile_feature("code", "string", values, top=20)
    assert len(profile["categories"]) == 20
    assert profile["proportions"][20] == pytest.approx(10 / 30)
    assert profile["coverage"] == pytest.approx(2 / 3)


def test_categorical_values_are_compared_as_text():
    profile = drift.profile_feature("flag", "boolean", [True, False, True, None])
    assert profile["categories"] == ["true", "false"]
    assert drift.compare(profile, [True, False, True, None])["psi"] == 0.0
    codes = drift.profile_feature("shift", "string", [1, 2, 2])
    assert drift.compare(codes, [1.0, "2", 2])["psi"] == 0.0


def test_columns_without_values_and_datetimes_are_skipped_with_a_reason():
    assert drift.profile_feature("x", "number", [None, float("nan")])["reason"] == drift.SKIP_NO_VALUES
    assert drift.profile_feature("x", "string", [None, None])["reason"] == drift.SKIP_NO_VALUES
    assert drift.profile_feature("when", "datetime", ["2024-01-01"])["reason"] == drift.SKIP_DATETIME
    skipped = drift.compare(drift.profile_feature("img", "image", []), [1, 2])
    assert skipped["status"] == "skipped" and skipped["psi"] is None and skipped["reason"] == drift.SKIP_TYPE


def test_too_few_values_give_no_numbers():
    profile = drift.profile_feature("x", "number", np.arange(100.0))
    result = drift.compare(profile, [1.0, 2.0], min_sample=50)
    assert result["status"] == "insufficient" and result["reason"] == drift.TOO_FEW
    assert result["psi"] is None and result["sample_size"] == 2


def test_input_records_reads_records_and_windows_and_ignores_the_rest():
    assert drift.input_records(None) == []
    assert drift.input_records("text") == []
    assert drift.input_records([1, "a", None]) == []
    assert drift.input_records([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    assert drift.input_records([[{"a": 1}, {"a": 2}], [[0.1, 0.2]]]) == [{"a": 1}, {"a": 2}]


def test_input_records_reads_windows_and_positional_rows_by_the_schema_s_columns():
    windows = [[[0.1, 20.0], [0.2, 21.0]], [[0.3, 22.0], [0.4]]]  # the last row has the wrong width
    assert drift.input_records(windows, ["vibration", "temperature"]) == [
        {"vibration": 0.1, "temperature": 20.0},
        {"vibration": 0.2, "temperature": 21.0},
        {"vibration": 0.3, "temperature": 22.0},
    ]
    assert drift.input_records([[1.0, "L1"]], ["温度", "line"]) == [{"温度": 1.0, "line": "L1"}]
    assert drift.input_records([[1.0, "L1"]]) == []  # without columns a bare row names nothing


def test_a_hundred_thousand_values_profile_and_compare():
    rng = np.random.default_rng(2)
    profile = drift.profile_feature("x", "number", rng.normal(size=100_000))
    result = drift.compare(profile, rng.normal(1.0, 1, 100_000))
    assert result["status"] == "significant" and result["sample_size"] == 100_000
    categories = drift.profile_feature("c", "string", rng.choice(["a", "b", "c"], 100_000))
    assert drift.compare(categories, rng.choice(["a", "b"], 100_000))["status"] == "significant"
