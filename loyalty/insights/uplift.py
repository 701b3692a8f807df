"""The statistics of a campaign with a control group: no database, integers in, typed results out.

- `proportion_difference`: treatment's conversion rate minus control's, with a 95% interval by the
  normal approximation and the unpooled standard error sqrt(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀).
- `mean_difference`: treatment's mean (revenue per member) minus control's, with Welch's standard
  error sqrt(s₁²/n₁ + s₀²/n₀) (each arm its own variance) and a 95% interval by the normal
  approximation: with thousands of members per arm Student's t and the normal quantile agree to the
  third decimal, and the contract asks for the normal one.
- `sample_ratio`: a chi-square goodness-of-fit test (one degree of freedom) of the observed control
  and treatment counts against the share the campaign asked for. A p-value under 0.001 means the
  draw or the delivery lost members on one side, and the arms can no longer be compared.

Inputs are counts and integer sums (money in minor units, so sums and sums of squares are exact
integers); floats appear only in rates, p-values and intervals. An interval needs at least one member
in each arm for a proportion and two for a mean (a variance); short of that it is None rather than a
division by zero. An arm with no spread at all (everyone converted, or all spent the same) has a
standard error of zero, and its interval is the single point of the difference: that is what the
normal approximation says, and the sample-ratio check is where a reader learns the arms are tiny.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

from scipy.stats import chi2

# The 97.5% quantile of the standard normal, to the two decimals every textbook uses.
Z_95 = 1.96
# Below this p-value the control/treatment split is too unlikely to be chance.
SAMPLE_RATIO_ALPHA = 0.001


@dataclass(frozen=True)
class Difference:
    """Treatment minus control, its standard error and 95% interval (None when an arm is too small)."""

    diff: float | None
    standard_error: float | None
    ci95: tuple[float, float] | None


@dataclass(frozen=True)
class MoneyDifference:
    """A difference of money per member in whole minor units: the difference rounded half up, the
    interval rounded outwards so that rounding never narrows it."""

    diff: int | None
    ci95: tuple[int, int] | None


@dataclass(frozen=True)
class ArmSums:
    """One arm's values (e.g. each member's revenue in minor units) as exact integer sums."""

    members: int
    total: int
    total_of_squares: int


@dataclass(frozen=True)
class SampleRatio:
    expected_control_share: float
    observed_control_share: float | None
    chi_square: float | None
    p_value: float | None
    mismatch: bool


def _interval(diff: float, standard_error: float) -> Difference:
    return Difference(diff, standard_error, (diff - Z_95 * standard_error, diff + Z_95 * standard_error))


def proportion_difference(treatment_converted: int, treatment_members: int,
                          control_converted: int, control_members: int) -> Difference:
    """Conversion rate of treatment minus that of control, unpooled standard error."""
    if treatment_members <= 0 or control_members <= 0:
        return Difference(None, None, None)
    p1 = Fraction(treatment_converted, treatment_members)
    p0 = Fraction(control_converted, control_members)
    variance = p1 * (1 - p1) / treatment_members + p0 * (1 - p0) / control_members
    return _interval(float(p1 - p0), math.sqrt(variance))


def _sample_variance(arm: ArmSums) -> Fraction:
    """s² = (Σx² − (Σx)²/n) / (n − 1), exactly."""
    n = arm.members
    return Fraction(n * arm.total_of_squares - arm.total * arm.total, n * (n - 1))


def mean_difference(treatment: ArmSums, control: ArmSums) -> Difference:
    """Mean of treatment minus mean of control, Welch's standard error."""
    if treatment.members <= 0 or control.members <= 0:
        return Difference(None, None, None)
    diff = Fraction(treatment.total, treatment.members) - Fraction(control.total, control.members)
    if treatment.members < 2 or control.members < 2:
        return Difference(float(diff), None, None)
    variance = (_sample_variance(treatment) / treatment.members
                + _sample_variance(control) / control.members)
    return _interval(float(diff), math.sqrt(variance))


def in_minor_units(difference: Difference) -> MoneyDifference:
    """A difference of money rounded to whole minor units (half up; the interval outwards)."""
    diff = None if difference.diff is None else math.floor(difference.diff + 0.5)
    ci95 = None
    if difference.ci95 is not None:
        low, high = difference.ci95
        ci95 = (math.floor(low), math.ceil(high))
    return MoneyDifference(diff, ci95)


def sample_ratio(control_members: int, treatment_members: int, control_percent: int) -> SampleRatio:
    """Chi-square goodness of fit of the observed split against `control_percent` (0–100).

    With no member yet there is nothing to test (p None, no mismatch). A share of 0% or 100% expects
    nobody on one side: any member there is a mismatch (p = 0), none is a perfect fit (p = 1).
    """
    expected_share = control_percent / 100
    total = control_members + treatment_members
    if total == 0:
        return SampleRatio(expected_share, None, None, None, False)
    observed_share = control_members / total
    statistic = Fraction(0)
    for observed, percent in ((control_members, control_percent), (treatment_members, 100 - control_percent)):
        expected = Fraction(total * percent, 100)
        if expected == 0:
            if observed:
                return SampleRatio(expected_share, observed_share, math.inf, 0.0, True)
            continue
        statistic += (observed - expected) ** 2 / expected
    p_value = float(chi2.sf(float(statistic), df=1))
    return SampleRatio(expected_share, observed_share, float(statistic), p_value, p_value < SAMPLE_RATIO_ALPHA)
