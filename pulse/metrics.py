"""Pure math: NPS, CSAT, CES and eNPS from score histograms, with 95% intervals and tests of change.

A histogram is a sequence of counts indexed by score (0..10). Every number Pulse shows is computed here
from histograms summed over days, never from a scan of responses.

Small samples must not look precise: every interval lies within the metric's scale, holds the value shown and
has a positive width from one answer on (NPS: adjusted Wald; CSAT: Wilson; means: t on a floored deviation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

Z95 = 1.959963984540054  # two-sided 95%
ALPHA = 0.05
SMALL_N = 10  # fewer answers than this: the value is shown greyed, as one or two more can move it a lot
MIN_COMPARE_N = 30  # fewer answers than this in either period: "too few answers to tell", no p-value
# with a handful of answers the normal approximation behind a p-value fails and the variances are themselves
# noise (four answers that agree have a sample SD of 0), so "significant" would be wrong far more often than 1 in 20
NPS_ADD_EACH = 0.75  # Rocks (2016): add 3/4 of a promoter and 3/4 of a detractor...
NPS_ADD_ALL = 3  # ...and 3 answers in all (the passives get the remaining 3/2)
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764}  # t(0.975, df) where the series below is not close enough


@dataclass(frozen=True)
class Estimate:
    """A metric over a group of answers: value with its 95% interval, n, and the metric's parts."""

    metric: str
    value: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    se: float | None
    parts: dict = field(default_factory=dict)

    @property
    def small_sample(self) -> bool:
        """Fewer than SMALL_N answers (none included): show the value greyed, with its interval."""
        return self.n < SMALL_N


@dataclass(frozen=True)
class Difference:
    """b minus a, with its 95% interval and a two-sided p-value (None when either side is too small to tell).

    `significance` is "too_few" (fewer than MIN_COMPARE_N answers on a side), "significant" or "not_significant".
    """

    a: Estimate
    b: Estimate
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    significance: str = "too_few"


def _count(hist: Sequence[int], low: int, high: int) -> int:
    return sum(hist[low : high + 1])


def bounded(value: float, low: float, high: float, floor: float, ceiling: float) -> tuple[float, float]:
    """An interval clipped to the scale and widened, if need be, to hold the value shown.

    An adjusted interval is centred a little off the plain estimate, so at the ends of the scale (one promoter:
    NPS 100) the estimate would otherwise sit just outside the interval drawn around it.
    """
    return max(min(low, value), floor), min(max(high, value), ceiling)


def nps(hist: Sequence[int], metric: str = "nps") -> Estimate:
    """NPS = %promoters (9-10) - %detractors (0-6), from -100 to 100, with the adjusted Wald interval.

    Rocks, B. (2016) "Interval Estimation for the 'Net Promoter Score'", The American Statistician 70(4):
    n' = n + 3, p = (promoters + 3/4) / n', d = (detractors + 3/4) / n', Var = p + d - (p - d)^2 (the variance
    of a score that is +1, 0 or -1 per answer) and (p - d) +/- z * sqrt(Var / n'). The plain Wald interval on
    the raw shares is [100, 100] at n = 1 and covers the truth only ~85% of the time at n = 5; this one never
    collapses and stays near 95% from n = 5 on. `se` is sqrt(Var / n'), so a test of change uses the same variance.
    """
    n = _count(hist, 0, 10)
    promoters, passives, detractors = _count(hist, 9, 10), _count(hist, 7, 8), _count(hist, 0, 6)
    parts = {"promoters": promoters, "passives": passives, "detractors": detractors}
    if n == 0:
        return Estimate(metric, None, 0, None, None, None, parts)
    value = 100 * (promoters - detractors) / n
    adjusted = n + NPS_ADD_ALL
    p, d = (promoters + NPS_ADD_EACH) / adjusted, (detractors + NPS_ADD_EACH) / adjusted
    se = 100 * math.sqrt((p + d - (p - d) ** 2) / adjusted)  # > 0: p and d are never 0 or 1
    low, high = bounded(value, 100 * (p - d) - Z95 * se, 100 * (p - d) + Z95 * se, -100.0, 100.0)
    return Estimate(metric, value, n, low, high, se, parts)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score interval of a proportion, in percent (sound at 0%, 100% and small n)."""
    if n == 0:
        return (0.0, 100.0)
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(centre - half, 0.0)  # exact at the ends: no rounding noise
    high = 1.0 if successes == n else min(centre + half, 1.0)
    return (100 * low, 100 * high)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (a 95% two-sided interval)."""
    if df in T975:
        return T975[df]
    z = Z95  # Cornish-Fisher series (Abramowitz & Stegun 26.7.5): within 3e-4 from df = 5, exact in the limit
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(term / df**power for power, term in enumerate(terms, start=1))


def mean(hist: Sequence[int], low: int, high: int) -> tuple[float | None, float | None, int]:
    """Mean score on low..high, its standard error and n; the deviation is floored at a sixth of the scale.

    The floor (one point on CES's 1-7, 2/3 on 1-5, 5/3 on 0-10) keeps one answer, or a few that agree, from
    looking like an exact mean: a sample SD of 0 says more about n than about the people asked.
    """
    n = _count(hist, low, high)
    if n == 0:
        return None, None, 0
    total = sum(score * hist[score] for score in range(low, high + 1))
    average = total / n
    variance = sum(hist[score] * (score - average) ** 2 for score in range(low, high + 1)) / (n - 1) if n > 1 else 0.0
    deviation = max(math.sqrt(variance), (high - low) / 6)
    return average, deviation / math.sqrt(n), n


def mean_interval(average: float, se: float, n: int, low: int, high: int) -> tuple[float, float]:
    """A t-interval (n - 1 degrees of freedom, at least 1) around a mean, within the scale low..high."""
    half = t975(max(n - 1, 1)) * se
    return bounded(average, average - half, average + half, float(low), float(high))


def mean_estimate(hist: Sequence[int], low: int, high: int, metric: str = "mean") -> Estimate:
    """The mean score on low..high as an Estimate, with its t-interval on a floored deviation (see `mean`)."""
    average, se, n = mean(hist, low, high)
    if average is None or se is None:
        return Estimate(metric, None, 0, None, None, None)
    ci_low, ci_high = mean_interval(average, se, n, low, high)
    return Estimate(metric, average, n, ci_low, ci_high, se)


def csat(hist: Sequence[int]) -> Estimate:
    """CSAT = share of 4-5 answers on a 1-5 scale, with a Wilson interval; the mean comes along.

    `se` is the Wilson interval's half-width over z: never 0, even at 0% or 100%, so that a test of change
    uses the variance behind the interval shown.
    """
    n = _count(hist, 1, 5)
    satisfied = _count(hist, 4, 5)
    average, mean_se, _ = mean(hist, 1, 5)
    parts = {"satisfied": satisfied, "mean": average}
    if average is not None and mean_se is not None:
        parts["mean_ci_low"], parts["mean_ci_high"] = mean_interval(average, mean_se, n, 1, 5)
    if n == 0:
        return Estimate("csat", None, 0, None, None, None, parts)
    low, high = wilson(satisfied, n)
    p = satisfied / n
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return Estimate("csat", 100 * p, n, low, high, 100 * half / Z95, parts)


def ces(hist: Sequence[int]) -> Estimate:
    """CES = mean of a 1-7 agreement scale with a t-interval on a floored deviation; the share of "easy" (5-7)
    comes along."""
    found = mean_estimate(hist, 1, 7, "ces")
    easy = _count(hist, 5, 7)
    return replace(found, parts={"easy": easy, "easy_share": 100 * easy / found.n if found.n else None})


def estimate(kind: str, hist: Sequence[int]) -> Estimate:
    """The headline metric of a survey kind."""
    if kind in ("nps", "enps"):
        return nps(hist, kind)
    if kind == "csat":
        return csat(hist)
    if kind == "ces":
        return ces(hist)
    raise ValueError(f"unknown survey kind {kind!r}")


def compare(a: Estimate, b: Estimate) -> Difference:
    """Is b different from a? A two-sample z-test on independent groups, with the variances of their intervals.

    Below MIN_COMPARE_N answers on either side there is an interval but no p-value: "too few answers to tell".
    """
    if a.value is None or b.value is None or a.se is None or b.se is None:
        return Difference(a, b, None, None, None, None, False)
    difference = b.value - a.value
    se = math.sqrt(a.se**2 + b.se**2)  # > 0: no interval of ours has zero width
    low, high = difference - Z95 * se, difference + Z95 * se
    if min(a.n, b.n) < MIN_COMPARE_N:
        return Difference(a, b, difference, low, high, None, False, "too_few")
    p_value = math.erfc(abs(difference / se) / math.sqrt(2))
    significant = p_value < ALPHA
    return Difference(
        a, b, difference, low, high, p_value, significant, "significant" if significant else "not_significant"
    )


def add(*hists: Sequence[int]) -> list[int]:
    total = [0] * 11
    for hist in hists:
        for score, count in enumerate(hist):
            total[score] += count
    return total
