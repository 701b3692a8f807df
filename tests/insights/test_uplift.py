"""The campaign statistics (loyalty.insights.uplift) against hand-computed textbook values, at their
edges, and by simulation: planted uplifts are covered by the 95% intervals about 95% of the time."""

import math

import numpy as np
import pytest
from scipy import stats

from loyalty.insights.uplift import (
    ArmSums,
    Difference,
    MoneyDifference,
    in_minor_units,
    mean_difference,
    proportion_difference,
    sample_ratio,
)


def arm(values) -> ArmSums:
    return ArmSums(len(values), sum(values), sum(v * v for v in values))


# --- two proportions: diff = p1 − p0, SE = sqrt(p1(1−p1)/n1 + p0(1−p0)/n0), ci = diff ± 1.96·SE ---

def test_two_proportions_equal_arms():
    # 30/100 against 20/100: SE = sqrt(.3·.7/100 + .2·.8/100) = sqrt(.0021 + .0016) = sqrt(.0037) = 0.060828
    # 1.96 · 0.060828 = 0.119222 → [−0.019222, 0.219222]
    result = proportion_difference(30, 100, 20, 100)
    assert result.diff == pytest.approx(0.10)
    assert result.standard_error == pytest.approx(math.sqrt(0.0037))
    assert result.standard_error == pytest.approx(0.060828, abs=1e-6)
    assert result.ci95 == pytest.approx((-0.019222, 0.219222), abs=1e-6)


def test_two_proportions_unequal_arms():
    # 45/300 = .15 against 10/100 = .10: SE = sqrt(.15·.85/300 + .1·.9/100) = sqrt(.000425 + .0009)
    # = sqrt(.001325) = 0.036401; 1.96 · 0.036401 = 0.071345 → [−0.021345, 0.121345]
    result = proportion_difference(45, 300, 10, 100)
    assert result.diff == pytest.approx(0.05)
    assert result.standard_error == pytest.approx(0.036401, abs=1e-6)
    assert result.ci95 == pytest.approx((-0.021345, 0.121345), abs=1e-6)


def test_two_proportions_treatment_worse():
    # 5/50 = .1 against 20/80 = .25: SE = sqrt(.1·.9/50 + .25·.75/80) = sqrt(.0018 + .00234375)
    # = sqrt(.00414375) = 0.064372; 1.96 · 0.064372 = 0.126169 → [−0.276169, −0.023831]
    result = proportion_difference(5, 50, 20, 80)
    assert result.diff == pytest.approx(-0.15)
    assert result.ci95 == pytest.approx((-0.276169, -0.023831), abs=1e-6)


# --- Welch: diff = x̄1 − x̄0, SE = sqrt(s1²/n1 + s0²/n0), s² = Σ(x − x̄)²/(n − 1), ci = diff ± 1.96·SE ---

def test_welch_small_arms():
    # treatment 10, 20, 30, 40: mean 25, s² = (225 + 25 + 25 + 225)/3 = 166.667
    # control 10, 10, 20: mean 13.333, s² = (11.111 + 11.111 + 44.444)/2 = 33.333
    # SE = sqrt(166.667/4 + 33.333/3) = sqrt(41.667 + 11.111) = sqrt(52.778) = 7.2648
    # diff = 11.66667; 1.96 · 7.26483 = 14.23907 → [−2.57240, 25.90574]
    treatment, control = [10, 20, 30, 40], [10, 10, 20]
    result = mean_difference(arm(treatment), arm(control))
    assert result.diff == pytest.approx(35 / 3)
    assert result.standard_error == pytest.approx(7.2648, abs=1e-4)
    assert result.ci95 == pytest.approx((-2.57240, 25.90574), abs=1e-5)
    # The same standard error as scipy's Welch t-test (t = diff / SE).
    welch = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.diff / result.standard_error == pytest.approx(welch.statistic)


def test_welch_skewed_money_in_minor_units():
    # treatment 0, 0, 0, 100, 200 fen: mean 60, s² = (3·3600 + 1600 + 19600)/4 = 8000
    # control 0, 50 fen: mean 25, s² = (625 + 625)/1 = 1250
    # SE = sqrt(8000/5 + 1250/2) = sqrt(1600 + 625) = sqrt(2225) = 47.1699
    # diff = 35; 1.96 · 47.1699 = 92.4530 → [−57.4530, 127.4530] → whole fen outwards [−58, 128]
    result = mean_difference(arm([0, 0, 0, 100, 200]), arm([0, 50]))
    assert result.diff == pytest.approx(35)
    assert result.standard_error == pytest.approx(math.sqrt(2225))
    assert result.ci95 == pytest.approx((-57.4530, 127.4530), abs=1e-4)
    assert in_minor_units(result) == MoneyDifference(35, (-58, 128))


def test_money_rounds_half_up_and_the_interval_outwards():
    assert in_minor_units(Difference(12.5, 1.0, (10.2, 14.8))) == MoneyDifference(13, (10, 15))
    assert in_minor_units(Difference(-12.5, 1.0, (-14.8, -10.2))) == MoneyDifference(-12, (-15, -10))
    assert in_minor_units(Difference(None, None, None)) == MoneyDifference(None, None)


# --- sample ratio: χ² = Σ (O − E)²/E with one degree of freedom; for df = 1, P(χ² > x) = erfc(sqrt(x/2)) ---

def test_sample_ratio_within_chance():
    # 180 control, 820 treatment, 20% asked: E = 200 and 800; χ² = 20²/200 + 20²/800 = 2 + 0.5 = 2.5
    # p = erfc(sqrt(1.25)) = 0.11385
    result = sample_ratio(180, 820, 20)
    assert result.expected_control_share == 0.2
    assert result.observed_control_share == 0.18
    assert result.chi_square == pytest.approx(2.5)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(1.25)))
    assert result.p_value == pytest.approx(0.11385, abs=1e-5)
    assert not result.mismatch


def test_sample_ratio_mismatch():
    # 150 control, 850 treatment, 20% asked: χ² = 50²/200 + 50²/800 = 12.5 + 3.125 = 15.625
    # p = erfc(sqrt(7.8125)) = 7.73e-5 < 0.001
    result = sample_ratio(150, 850, 20)
    assert result.chi_square == pytest.approx(15.625)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(7.8125)))
    assert result.p_value == pytest.approx(7.73e-5, rel=1e-2)
    assert result.mismatch


def test_sample_ratio_exact_split():
    # 50/50 asked and observed: χ² = 0, p = 1
    result = sample_ratio(50, 50, 50)
    assert (result.chi_square, result.p_value, result.mismatch) == (0.0, 1.0, False)


# --- edges: no ZeroDivisionError, a clear answer instead ---

def test_an_empty_arm_gives_no_difference():
    assert proportion_difference(0, 0, 3, 10) == Difference(None, None, None)
    assert proportion_difference(3, 10, 0, 0) == Difference(None, None, None)
    assert mean_difference(arm([]), arm([1, 2])) == Difference(None, None, None)
    assert mean_difference(arm([1, 2]), arm([])) == Difference(None, None, None)


def test_one_member_gives_a_difference_without_an_interval():
    result = mean_difference(arm([500]), arm([100, 300]))
    assert result == Difference(300.0, None, None)


def test_no_spread_gives_a_point_interval():
    # Everyone converts in both arms, or nobody does; everyone spends the same.
    assert proportion_difference(10, 10, 4, 4) == Difference(0.0, 0.0, (0.0, 0.0))
    assert proportion_difference(0, 10, 0, 4) == Difference(0.0, 0.0, (0.0, 0.0))
    assert mean_difference(arm([700] * 3), arm([200] * 5)) == Difference(500.0, 0.0, (500.0, 500.0))


def test_sample_ratio_edges():
    nobody = sample_ratio(0, 0, 20)
    assert (nobody.observed_control_share, nobody.p_value, nobody.mismatch) == (None, None, False)
    no_control_asked = sample_ratio(0, 40, 0)
    assert (no_control_asked.p_value, no_control_asked.mismatch) == (1.0, False)
    control_not_asked = sample_ratio(1, 40, 0)
    assert (control_not_asked.p_value, control_not_asked.mismatch) == (0.0, True)


# --- simulation ---

MEMBERS = 20_000
CONTROL_SHARE = 0.2
SEEDS = 200
# Conversion and spend of a converted member (negative binomial, r = 2: skewed like real baskets;
# mean r(1 − q)/q exactly), control and treatment.
CONVERSION = {"control": 0.10, "treatment": 0.12}
MEAN_SPEND = {"control": 10_000, "treatment": 12_000}


def _simulated_arm(rng, members: int, arm_name: str) -> tuple[int, ArmSums]:
    converted = rng.random(members) < CONVERSION[arm_name]
    q = 2 / (2 + MEAN_SPEND[arm_name])
    spend = np.where(converted, rng.negative_binomial(2, q, members), 0).astype(np.int64)
    return int(converted.sum()), ArmSums(members, int(spend.sum()), int((spend * spend).sum()))


def test_intervals_cover_the_planted_uplift_about_95_percent_of_the_time():
    true_conversion = CONVERSION["treatment"] - CONVERSION["control"]
    true_revenue = (CONVERSION["treatment"] * MEAN_SPEND["treatment"]
                    - CONVERSION["control"] * MEAN_SPEND["control"])  # 1440 − 1000 = 440 fen per member
    covered = {"conversion": 0, "revenue": 0}
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        control_members = int(rng.binomial(MEMBERS, CONTROL_SHARE))
        control_converted, control = _simulated_arm(rng, control_members, "control")
        treatment_converted, treatment = _simulated_arm(rng, MEMBERS - control_members, "treatment")
        low, high = proportion_difference(treatment_converted, treatment.members,
                                          control_converted, control.members).ci95
        covered["conversion"] += low <= true_conversion <= high
        low, high = mean_difference(treatment, control).ci95
        covered["revenue"] += low <= true_revenue <= high
    coverage = {name: count / SEEDS for name, count in covered.items()}
    print(f"\n95% interval coverage over {SEEDS} seeds of {MEMBERS} members: "
          f"conversion {coverage['conversion']:.3f}, revenue per member {coverage['revenue']:.3f}")
    # 200 seeds at a true 95%: the count is Binomial(200, .95), sd ≈ 3.1 seeds; 0.90–0.99 is over ±3 sd.
    for value in coverage.values():
        assert 0.90 <= value <= 0.99
