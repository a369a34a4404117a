"""Figures are plain data: bands, hover text with n, escaped user text, localized ticks."""

from __future__ import annotations

import pytest

from pulse import charts

POINTS = [
    {"date": "2026-06-01", "value": 10.0, "n": 30, "ci_low": 0.0, "ci_high": 20.0},
    {"date": "2026-06-08", "value": None, "n": 0, "ci_low": None, "ci_high": None},
]


def fmt(value):
    return f"{value:.1f}"


def test_a_single_trend_has_its_band_and_n_in_the_hover():
    figure = charts.trend(
        [{"name": "NPS", "points": POINTS}],
        value_label="NPS",
        n_label="n =",
        band_label="95%",
        fmt=fmt,
        fmt_n=str,
        locale="en",
        ticks=[("2026-06-01", "cze 2026")],
    )
    band, line = figure["data"]
    assert band["fill"] == "toself" and band["y"] == []  # one point alone: no width to fill...
    assert (line["error_y"]["array"], line["error_y"]["arrayminus"]) == ([10.0, None], [10.0, None])  # ...a bar
    assert line["y"] == [10.0, None]
    assert line["text"] == ["NPS: 10.0 (0.0 – 20.0), n = 30", "NPS: – (n = 0)"]
    assert figure["layout"]["xaxis"]["ticktext"] == ["cze 2026"]


def test_user_text_is_escaped_for_plotlys_html_hover():
    figure = charts.trend(
        [{"name": "<img src=x onerror=alert(1)>", "points": POINTS}],
        value_label="<b>v</b>",
        n_label="n",
        band_label="b",
        fmt=fmt,
        fmt_n=str,
        locale="en",
    )
    names = {trace["name"] for trace in figure["data"]}
    assert "&lt;img src=x onerror=alert(1)&gt;" in names
    assert all("<img" not in text for trace in figure["data"] for text in trace.get("text", []))
    assert figure["layout"]["yaxis"]["title"]["text"] == "&lt;b&gt;v&lt;/b&gt;"


def test_bars_carry_asymmetric_error_bars():
    figure = charts.bars(
        ["0-30", "31-90"],
        [40.0, None],
        [20.0, None],
        [55.0, None],
        [10, 0],
        value_label="NPS",
        n_label="n =",
        fmt=fmt,
        fmt_n=str,
        locale="en",
    )
    [bar] = figure["data"]
    assert bar["error_y"]["array"] == [15.0, None] and bar["error_y"]["arrayminus"] == [20.0, None]
    assert bar["text"] == ["0-30: 40.0 (20.0 – 55.0), n = 10", "31-90: – (n = 0)"]


def drawn_intervals(figure: dict) -> dict[str, tuple[float, float]]:
    """date -> (low, high) of every interval the figure draws: band segments and error bars."""
    drawn: dict[str, tuple[float, float]] = {}
    for trace in figure["data"]:
        if trace.get("fill") == "toself":
            segment: list[tuple[str, float]] = []
            for x, y in [*zip(trace["x"], trace["y"], strict=True), (None, None)]:
                if x is not None and y is not None:  # Plotly breaks a shape at a missing x or y
                    segment.append((x, y))
                    continue
                half = len(segment) // 2
                if half >= 2:  # one x only would be a line, not a band
                    highs, lows = segment[:half], segment[half:][::-1]
                    for (day, high), (same, low) in zip(highs, lows, strict=True):
                        assert day == same
                        drawn[day] = (low, high)
                segment = []
        errors = trace.get("error_y")
        if errors:
            for x, y, plus, minus in zip(trace["x"], trace["y"], errors["array"], errors["arrayminus"], strict=True):
                if plus is not None and minus is not None:
                    drawn[x] = (y - minus, y + plus)
    return drawn


def point(day: str, value: float | None, n: int, low: float | None = None, high: float | None = None) -> dict:
    return {"date": day, "value": value, "n": n, "ci_low": low, "ci_high": high}


# one answer, a week with none, then two weeks with enough: the first point sat alone and had no band
WEEKS = [
    point("2026-06-01", 100.0, 1, -48.5, 100.0),
    point("2026-06-08", None, 0),
    point("2026-06-15", 20.0, 12, -10.0, 45.0),
    point("2026-06-22", 30.0, 40, 12.0, 46.0),
]


def test_every_point_with_answers_has_its_interval_drawn():
    figure = charts.trend(
        [{"name": "NPS", "points": WEEKS}],
        value_label="NPS",
        n_label="n =",
        band_label="95%",
        fmt=fmt,
        fmt_n=str,
        locale="en",
    )
    drawn = drawn_intervals(figure)
    assert drawn == {
        "2026-06-01": (-48.5, 100.0),
        "2026-06-15": (-10.0, 45.0),
        "2026-06-22": (12.0, 46.0),
    }


def test_small_samples_are_grey_with_a_note_and_their_interval_drawn():
    figure = charts.trend(
        [{"name": "A", "points": WEEKS}, {"name": "B", "points": WEEKS[2:]}],
        value_label="NPS",
        n_label="n =",
        band_label="95%",
        few_label="few answers",
        fmt=fmt,
        fmt_n=str,
        locale="en",
    )
    first = figure["data"][0]
    assert first["marker"]["color"][0] == charts.FEW_COLOUR != first["marker"]["color"][2]
    assert first["marker"]["symbol"] == ["circle-open", "circle", "circle", "circle"]
    assert first["text"][0] == "A: 100.0 (-48.5 – 100.0), n = 1, few answers"
    assert first["text"][2] == "A: 20.0 (-10.0 – 45.0), n = 12"
    assert drawn_intervals(figure) == {"2026-06-01": (-48.5, 100.0)}  # several lines: bars on small n only


def test_small_bars_are_grey_with_a_note():
    figure = charts.bars(
        ["0-30", "31-90"],
        [40.0, 10.0],
        [20.0, -60.0],
        [55.0, 70.0],
        [30, 3],
        value_label="NPS",
        n_label="n =",
        few_label="few answers",
        fmt=fmt,
        fmt_n=str,
        locale="en",
    )
    [bar] = figure["data"]
    assert bar["marker"]["color"] == [charts.PALETTE[0], charts.FEW_COLOUR]
    assert bar["text"][1] == "31-90: 10.0 (-60.0 – 70.0), n = 3, few answers"


def test_sparklines_of_one_table_share_their_scale():
    rows = [[point("2026-06-01", 10.0, 30), point("2026-06-08", 20.0, 30)], [point("2026-06-01", -80.0, 2)], []]
    y_range = charts.shared_range(rows, (-100, 100))
    assert y_range[0] < -80 and y_range[1] > 20 and -100 <= y_range[0] and y_range[1] <= 100
    assert charts.shared_range([[point("2026-06-01", 100.0, 1)]], (-100, 100)) == (pytest.approx(96.0), 100)
    assert charts.shared_range([[], [point("2026-06-01", None, 0)]], (1, 7)) is None
    spark = charts.sparkline(rows[0], fmt, locale="en", y_range=y_range)
    assert spark["layout"]["yaxis"]["range"] == list(y_range)
