"""The math of the metrics: known values by hand, and properties against direct computation from raw scores."""

from __future__ import annotations

import math
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
    # 50 promoters, 30 passives, 20 detractors of 100: NPS 30; Var = (0.5 + 0.2 - 0.09) / 100 = 0.0061
    hist = hist_of([10] * 50 + [8] * 30 + [3] * 20)
    result = metrics.nps(hist)
    assert result.value == pytest.approx(30.0)
    assert result.n == 100
    assert result.se == pytest.approx(100 * math.sqrt(0.0061))
    assert result.ci_low == pytest.approx(30 - 1.959964 * 7.8102, abs=1e-3)
    assert result.parts == {"promoters": 50, "passives": 30, "detractors": 20}


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
    assert result.se == pytest.approx(100 * statistics.pstdev(per_answer) / math.sqrt(len(scores)), abs=1e-9)
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
    assert result.se == pytest.approx(statistics.stdev(scores) / math.sqrt(len(scores)), abs=1e-9)


@given(nps_scores, nps_scores)
def test_difference_is_antisymmetric_and_its_interval_holds_it(a, b):
    ab = metrics.compare(metrics.nps(hist_of(a)), metrics.nps(hist_of(b)))
    ba = metrics.compare(metrics.nps(hist_of(b)), metrics.nps(hist_of(a)))
    assert ab.difference == pytest.approx(-ba.difference)
    assert ab.p_value == pytest.approx(ba.p_value)
    assert ab.ci_low <= ab.difference <= ab.ci_high
    assert ab.significant == (ab.p_value < 0.05)
