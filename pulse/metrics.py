"""Pure math: NPS, CSAT, CES and eNPS from score histograms, with 95% intervals and tests of change.

A histogram is a sequence of counts indexed by score (0..10). Every number Pulse shows is computed here
from histograms summed over days, never from a scan of responses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Z95 = 1.959963984540054  # two-sided 95%
ALPHA = 0.05


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


@dataclass(frozen=True)
class Difference:
    """b minus a, with its 95% interval and a two-sided p-value."""

    a: Estimate
    b: Estimate
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool


def _count(hist: Sequence[int], low: int, high: int) -> int:
    return sum(hist[low : high + 1])


def nps(hist: Sequence[int], metric: str = "nps") -> Estimate:
    """NPS = %promoters (9-10) - %detractors (0-6), from -100 to 100.

    Var = [p + d - (p - d)^2] / n, the variance of the mean of a score that is +1, 0 or -1 per answer.
    """
    n = _count(hist, 0, 10)
    promoters, passives, detractors = _count(hist, 9, 10), _count(hist, 7, 8), _count(hist, 0, 6)
    parts = {"promoters": promoters, "passives": passives, "detractors": detractors}
    if n == 0:
        return Estimate(metric, None, 0, None, None, None, parts)
    p, d = promoters / n, detractors / n
    value = 100 * (p - d)
    se = 100 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return Estimate(metric, value, n, max(value - Z95 * se, -100.0), min(value + Z95 * se, 100.0), se, parts)


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


def mean(hist: Sequence[int], low: int, high: int) -> tuple[float | None, float | None, int]:
    """Mean score on low..high and its standard error (sample variance), with n."""
    n = _count(hist, low, high)
    if n == 0:
        return None, None, 0
    total = sum(score * hist[score] for score in range(low, high + 1))
    average = total / n
    if n == 1:
        return average, 0.0, 1
    variance = sum(hist[score] * (score - average) ** 2 for score in range(low, high + 1)) / (n - 1)
    return average, math.sqrt(variance / n), n


def csat(hist: Sequence[int]) -> Estimate:
    """CSAT = share of 4-5 answers on a 1-5 scale, with a Wilson interval; the mean comes along."""
    n = _count(hist, 1, 5)
    satisfied = _count(hist, 4, 5)
    average, mean_se, _ = mean(hist, 1, 5)
    parts = {"satisfied": satisfied, "mean": average}
    if average is not None and mean_se is not None:
        parts["mean_ci_low"] = average - Z95 * mean_se
        parts["mean_ci_high"] = average + Z95 * mean_se
    if n == 0:
        return Estimate("csat", None, 0, None, None, None, parts)
    share = satisfied / n
    low, high = wilson(satisfied, n)
    return Estimate("csat", 100 * share, n, low, high, 100 * math.sqrt(share * (1 - share) / n), parts)


def ces(hist: Sequence[int]) -> Estimate:
    """CES = mean of a 1-7 agreement scale with its interval; the share of "easy" (5-7) comes along."""
    average, se, n = mean(hist, 1, 7)
    easy = _count(hist, 5, 7)
    parts = {"easy": easy, "easy_share": 100 * easy / n if n else None}
    if average is None or se is None:
        return Estimate("ces", None, 0, None, None, None, parts)
    return Estimate("ces", average, n, average - Z95 * se, average + Z95 * se, se, parts)


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
    """Is b different from a? A two-sample z-test on independent groups (normal approximation)."""
    if a.value is None or b.value is None or a.se is None or b.se is None:
        return Difference(a, b, None, None, None, None, False)
    difference = b.value - a.value
    se = math.sqrt(a.se**2 + b.se**2)
    if se == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = math.erfc(abs(difference / se) / math.sqrt(2))
    return Difference(a, b, difference, difference - Z95 * se, difference + Z95 * se, p_value, p_value < ALPHA)


def add(*hists: Sequence[int]) -> list[int]:
    total = [0] * 11
    for hist in hists:
        for score, count in enumerate(hist):
            total[score] += count
    return total
