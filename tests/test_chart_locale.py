"""Charts speak the reader's language: Plotly's locale (month and day names, date formats, separators) comes from
Babel through one helper that every figure of pulse.charts goes through, and the pages draw nothing else."""

from __future__ import annotations

import inspect

import pytest

from pulse import charts, i18n
from pulse.web.dashboard import figure as page_figure

POINTS = [
    {"date": "2026-01-05", "value": 10.5, "n": 30, "ci_low": 0.0, "ci_high": 20.0},
    {"date": "2026-02-02", "value": 12.25, "n": 31, "ci_low": 2.0, "ci_high": 22.0},
]


@pytest.mark.parametrize(
    ("locale", "january", "february_short", "monday", "decimal", "thousands", "date", "day_month_year"),
    [
        ("en", "January", "Feb", "Monday", ".", ",", "%-m/%-d/%y", "%b %-d, %Y"),
        ("pl", "styczeń", "lut", "poniedziałek", ",", "\xa0", "%-d.%m.%Y", "%-d %b %Y"),
        ("it", "gennaio", "feb", "lunedì", ",", ".", "%d/%m/%y", "%-d %b %Y"),
        ("sl", "januar", "feb.", "ponedeljek", ",", ".", "%-d. %-m. %Y", "%-d. %b %Y"),
    ],
)
def test_plotly_locale_comes_from_babel(
    locale, january, february_short, monday, decimal, thousands, date, day_month_year
):
    words = charts.plotly_locale(locale)["format"]
    assert words["months"][0] == january and words["shortMonths"][1] == february_short
    assert words["days"][1] == monday  # d3 weeks start on Sunday
    assert (words["decimal"], words["thousands"]) == (decimal, thousands)
    assert (words["date"], words["dayMonthYear"]) == (date, day_month_year)
    assert len(words["months"]) == len(words["shortMonths"]) == 12 and len(words["days"]) == 7


def test_cldr_patterns_become_d3_formats():
    assert charts.d3_format("d MMM y") == "%-d %b %Y"
    assert charts.d3_format("dd.MM.yy HH:mm") == "%d.%m.%y %H:%M"
    assert charts.d3_format("EEEE, d 'de' MMMM") == "%A, %-d de %B"
    assert charts.d3_format("h:mm a '100%' ''") == "%-I:%M %p 100%% '"


def test_plotlys_own_words_come_from_the_catalog():
    dictionary = charts.plotly_locale("pl")["dictionary"]
    assert set(dictionary) == set(charts.PLOTLY_WORDS)
    assert dictionary["Zoom in"] == i18n.translate("pl", "Zoom in")


def every_figure(locale: str) -> dict[str, dict]:
    common = {"n_label": "n =", "fmt": str, "fmt_n": str, "locale": locale}
    return {
        "trend": charts.trend([{"name": "NPS", "points": POINTS}], value_label="NPS", band_label="95%", **common),
        "bars": charts.bars(["a"], [1.5], [1.0], [2.0], [30], value_label="NPS", **common),
        "sparkline": charts.sparkline(POINTS, str, locale=locale),
        "quadrant": charts.quadrant({"loyal": 3}, dict.fromkeys(charts.QUADRANT_CELLS, "x"), str, locale=locale),
        "scatter": charts.scatter(
            [{"name": "NPS", "points": [{"x": 1.25, "y": 2.5, "label": "t"}]}],
            x_label="eNPS",
            y_label="y",
            x_range=(-100, 100),
            y_range=(-100, 100),
            locale=locale,
        ),
    }


@pytest.mark.parametrize("locale", ["en", "pl", "it", "sl"])
def test_every_figure_carries_the_locale_and_its_separators(locale):
    words = charts.plotly_locale(locale)["format"]
    for name, made in every_figure(locale).items():
        assert made["config"]["locale"] == locale, name
        assert made["config"]["locales"][locale]["format"]["shortMonths"] == words["shortMonths"], name
        assert made["layout"]["separators"] == words["decimal"] + words["thousands"], name
        page_figure(made)  # the pages take it


def test_hover_dates_on_a_trend_use_the_locales_format():
    trend = every_figure("pl")["trend"]
    assert trend["layout"]["xaxis"]["type"] == "date"
    assert trend["layout"]["xaxis"]["hoverformat"] == "%-d %b %Y"


def test_every_figure_function_takes_the_locale():
    """A new chart cannot forget the locale: each public function that makes a figure requires it."""
    makers = [
        function
        for name, function in inspect.getmembers(charts, inspect.isfunction)
        if function.__module__ == charts.__name__
        and not name.startswith("_")
        and name not in ("safe", "shared_range", "d3_format", "plotly_locale", "localized")
    ]
    assert {f.__name__ for f in makers} == set(every_figure("en"))
    for function in makers:
        parameter = inspect.signature(function).parameters["locale"]
        assert parameter.default is inspect.Parameter.empty, function.__name__


def test_a_page_refuses_a_figure_without_a_locale():
    with pytest.raises(ValueError, match="locale"):
        page_figure({"data": [], "layout": {}, "config": charts.CONFIG})
