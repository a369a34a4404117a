"""Figures are plain data: bands, hover text with n, escaped user text, localized ticks."""

from __future__ import annotations

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
        ticks=[("2026-06-01", "cze 2026")],
    )
    band, line = figure["data"]
    assert band["fill"] == "toself" and band["y"] == [20.0, None, None, 0.0]
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
    )
    [bar] = figure["data"]
    assert bar["error_y"]["array"] == [15.0, None] and bar["error_y"]["arrayminus"] == [20.0, None]
    assert bar["text"] == ["0-30: 40.0 (20.0 – 55.0), n = 10", "31-90: – (n = 0)"]
