"""The math of the metrics: known values by hand, and properties against direct computation from raw scores."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulse import metrics


def hist_of(scores: list[int]) -> list[int]:
    counts = [0] * 11
    for score in scores:
        counts[score] += 1
    return counts


def test_nps_known_values():
    # 50 promoters, 30 passives, 20 detractors of 100: NPS 30. Adjusted Wald (Rocks 2016): n' = 103,
    # p = 50.75 / 103, d = 20.75 / 103, centre 29.1262, Var = p + d - (p - d)^2 = 0.609341, se = 7.6915
    hist = hist_of([10] * 50 + [8] * 30 + [3] * 20)
    result = metrics.nps(hist)
    assert result.value == pytest.approx(30.0)
    assert result.n == 100
    assert result.se == pytest.approx(7.6915, abs=1e-4)
    assert result.ci_low == pytest.approx(29.1262 - 1.959964 * 7.6915, abs=1e-3)
    assert result.ci_high == pytest.approx(29.1262 + 1.959964 * 7.6915, abs=1e-3)
    assert result.parts == {"promoters": 50, "passives": 30, "detractors": 20}


def test_one_answer_never_gives_a_point_interval():
    # the plain Wald interval was [100, 100] for one promoter: p + d - (p - d)^2 = 0
    promoter = metrics.nps(hist_of([10]))
    assert promoter.value == 100 and promoter.ci_high == 100
    assert promoter.ci_low == pytest.approx(100 * (0.25 - 1.959964 * 0.375), abs=1e-3)  # n' = 4, p = .4375, d = .1875
    detractor = metrics.estimate("enps", hist_of([0]))
    assert detractor.value == -100 and detractor.ci_low == -100 and detractor.ci_high > 0
    ces = metrics.ces(hist_of([5]))
    assert ces.ci_low < 5 < ces.ci_high
    csat = metrics.csat(hist_of([5]))
    assert csat.ci_low < 100 == csat.ci_high
    assert csat.parts["mean_ci_low"] < 5 == csat.parts["mean_ci_high"]


def test_ces_has_a_t_interval_on_a_floored_standard_deviation():
    result = metrics.ces(hist_of([7, 6, 5, 2]))  # s = 2.1602 (above the floor of 1), t(0.975, 3) = 3.1824
    assert result.ci_low == pytest.approx(5 - 3.1824 * 2.160247 / 2, abs=1e-3)
    assert result.ci_high == 7  # 8.44 clipped to the scale
    agreeing = metrics.ces(hist_of([6, 6, 6]))  # s = 0: the floor of one scale point holds
    assert agreeing.se == pytest.approx(1 / math.sqrt(3))
    assert agreeing.ci_low == pytest.approx(6 - 4.3027 / math.sqrt(3), abs=1e-3)
    assert metrics.t975(1) == pytest.approx(12.7062, abs=1e-4)
    assert metrics.t975(30) == pytest.approx(2.0423, abs=1e-4)
    assert metrics.t975(10**6) == pytest.approx(metrics.Z95, abs=1e-4)


def test_empty_groups_have_no_value():
    for kind in ("nps", "csat", "ces", "enps"):
        result = metrics.estimate(kind, [0] * 11)
        assert (result.value, result.n, result.ci_low) == (None, 0, None)


def test_csat_top_two_box_with_a_wilson_interval():
    result = metrics.csat(hist_of([5] * 6 + [4] * 2 + [2] * 2))
    assert result.value == pytest.approx(80.0)
    assert result.ci_low == pytest.approx(49.0155, abs=1e-3)  # Wilson, n=10, p=0.8
    assert result.ci_high == pytest.approx(94.3318, abs=1e-3)
    assert result.parts["mean"] == pytest.approx(4.2)
    all_happy = metrics.csat(hist_of([5] * 3))
    assert all_happy.value == 100 and all_happy.ci_high == 100 and all_happy.ci_low < 100  # sound at 100%


def test_ces_mean_and_easy_share():
    result = metrics.ces(hist_of([7, 6, 5, 2]))
    assert result.value == pytest.approx(5.0)
    assert result.parts == {"easy": 3, "easy_share": 75.0}
    assert result.se == pytest.approx(statistics.stdev([7, 6, 5, 2]) / 2)


def test_a_clear_change_is_significant_and_noise_is_not():
    before = metrics.nps(hist_of([10] * 30 + [8] * 30 + [2] * 40))  # -10
    after = metrics.nps(hist_of([10] * 60 + [8] * 30 + [2] * 10))  # +50
    change = metrics.compare(before, after)
    assert change.difference == pytest.approx(60.0)
    assert change.significant and change.p_value < 1e-6
    same = metrics.compare(before, metrics.nps(hist_of([10] * 31 + [8] * 30 + [2] * 39)))
    assert not same.significant and same.p_value > 0.5


def test_an_empty_side_compares_to_nothing():
    change = metrics.compare(metrics.nps([0] * 11), metrics.nps(hist_of([10])))
    assert (change.difference, change.p_value, change.significant) == (None, None, False)


nps_scores = st.lists(st.integers(0, 10), min_size=1, max_size=300)


@given(nps_scores)
def test_nps_equals_the_direct_computation(scores):
    result = metrics.nps(hist_of(scores))
    per_answer = [1 if s >= 9 else (-1 if s <= 6 else 0) for s in scores]
    assert result.value == pytest.approx(100 * statistics.fmean(per_answer))
    # adjusted Wald: 3/4 of a promoter and 3/4 of a detractor added, 3 answers in all
    adjusted = per_answer * 4 + [1] * 3 + [-1] * 3 + [0] * 6  # in quarters of an answer: n' = n + 3
    assert result.se == pytest.approx(100 * statistics.pstdev(adjusted) / math.sqrt(len(scores) + 3), abs=1e-9)
    assert -100 <= result.ci_low <= result.value <= result.ci_high <= 100


@given(st.lists(st.integers(1, 5), min_size=1, max_size=300))
def test_csat_equals_the_direct_computation(scores):
    result = metrics.csat(hist_of(scores))
    assert result.value == pytest.approx(100 * sum(s >= 4 for s in scores) / len(scores))
    assert result.parts["mean"] == pytest.approx(statistics.fmean(scores))
    assert 0 <= result.ci_low <= result.value <= result.ci_high <= 100


@given(st.lists(st.integers(1, 7), min_size=2, max_size=300))
def test_ces_equals_the_direct_computation(scores):
    result = metrics.ces(hist_of(scores))
    assert result.value == pytest.approx(statistics.fmean(scores))
    sd = max(statistics.stdev(scores), 1.0)  # floored at one scale point
    assert result.se == pytest.approx(sd / math.sqrt(len(scores)), abs=1e-9)


def width_and_containment(result, low: float, high: float) -> None:
    assert low <= result.ci_low <= result.value <= result.ci_high <= high
    assert result.ci_high - result.ci_low > 0


@given(nps_scores)
def test_an_nps_interval_never_collapses_and_holds_the_value(scores):
    width_and_containment(metrics.nps(hist_of(scores)), -100, 100)
    width_and_containment(metrics.estimate("enps", hist_of(scores)), -100, 100)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=300))
def test_a_csat_interval_never_collapses_and_holds_the_value(scores):
    result = metrics.csat(hist_of(scores))
    width_and_containment(result, 0, 100)
    assert 1 <= result.parts["mean_ci_low"] <= result.parts["mean"] <= result.parts["mean_ci_high"] <= 5
    assert result.parts["mean_ci_high"] > result.parts["mean_ci_low"]


@given(st.lists(st.integers(1, 7), min_size=1, max_size=300))
def test_a_ces_interval_never_collapses_and_holds_the_value(scores):
    width_and_containment(metrics.ces(hist_of(scores)), 1, 7)


@given(st.lists(st.integers(0, 10), min_size=1, max_size=300))
def test_a_mean_interval_never_collapses_and_holds_the_value(scores):
    width_and_containment(metrics.mean_estimate(hist_of(scores), 0, 10), 0, 10)  # engagement drivers, 0-10


# true shares of promoters and detractors, as customers answer
TRUTHS = [(0.5, 0.2), (0.3, 0.3), (0.6, 0.1)]


@pytest.mark.parametrize("n", [5, 10, 30, 100])
def test_the_nps_interval_covers_the_truth_95_times_in_100(n):
    rng = random.Random(20160401 + n)
    draws = 2000
    for promoters, detractors in TRUTHS:
        truth = 100 * (promoters - detractors)
        weights = [promoters, 1 - promoters - detractors, detractors]
        covered = 0
        for _ in range(draws):
            sample = rng.choices((10, 8, 0), weights, k=n)
            result = metrics.nps(hist_of(sample))
            covered += result.ci_low <= truth <= result.ci_high
        # exact coverage of these truths lies within 0.935..0.965; three standard errors of 2,000 draws on top
        assert abs(covered / draws - 0.95) <= 0.03, (n, promoters, detractors, covered / draws)


def test_a_change_between_small_periods_is_too_few_to_tell():
    # four answers a period: Overview called such a change on CES "significant (p = 0.011)", in bold
    before, after = metrics.ces(hist_of([7, 7, 6, 7])), metrics.ces(hist_of([5, 5, 6, 5]))
    change = metrics.compare(before, after)
    assert change.difference == pytest.approx(-1.5)
    assert (change.significance, change.p_value, change.significant) == ("too_few", None, False)
    assert change.ci_low < change.difference < change.ci_high


def test_at_the_minimum_n_a_change_gets_its_p_value():
    n = metrics.MIN_COMPARE_N
    before = metrics.nps(hist_of([10] * (n // 3) + [8] * (n // 3) + [2] * (n - 2 * (n // 3))))
    after = metrics.nps(hist_of([10] * (n - 2) + [2] * 2))
    change = metrics.compare(before, after)
    assert change.significance == "significant" and change.p_value < 0.05 and change.significant
    se = math.sqrt(before.se**2 + after.se**2)  # the variances behind the intervals shown
    assert change.p_value == pytest.approx(math.erfc(abs(change.difference) / se / math.sqrt(2)))
    one_less = metrics.compare(metrics.nps(hist_of([2] * (n - 1))), after)
    assert one_less.significance == "too_few" and one_less.p_value is None


@given(nps_scores, nps_scores)
def test_difference_is_antisymmetric_and_its_interval_holds_it(a, b):
    ab = metrics.compare(metrics.nps(hist_of(a)), metrics.nps(hist_of(b)))
    ba = metrics.compare(metrics.nps(hist_of(b)), metrics.nps(hist_of(a)))
    assert ab.difference == pytest.approx(-ba.difference)
    assert ab.ci_low <= ab.difference <= ab.ci_high
    assert ab.significance == ba.significance
    if min(len(a), len(b)) < metrics.MIN_COMPARE_N:
        assert (ab.significance, ab.p_value, ab.significant) == ("too_few", None, False)
    else:
        assert ab.p_value == pytest.approx(ba.p_value)
        assert ab.significant == (ab.p_value < 0.05)
        assert ab.significance == ("significant" if ab.significant else "not_significant")
