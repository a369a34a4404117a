"""Plotly figures as plain data: trends with their 95% band, bars with error bars, sparklines.

Pure: series in, figure JSON out. Every label is already translated and every number formatted for the
reader's locale by the caller's `fmt`; user text is escaped here, because Plotly renders hover text as HTML.
Values from fewer than metrics.SMALL_N answers are grey (open markers), say so on hover, and keep their interval.
Every figure function takes the reader's `locale` and ends in `localized`, so what Plotly writes itself (month
names on date axes, hover dates, tick and hover numbers, the mode bar's tooltips) is in the reader's language too.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable, Sequence

from babel import Locale
from babel.dates import get_day_names, get_month_names
from babel.numbers import get_decimal_symbol, get_group_symbol

from pulse import i18n
from pulse.i18n import N_
from pulse.metrics import SMALL_N

# Colours for a light page. Figures stay scheme-neutral here: static/dashboard.js themes them from the page's CSS
# variables (text, grid, band) and swaps each of these for a lighter shade (its DARK_SHADES) on a dark page.
PALETTE = ["#0b5cad", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"]
BAND = "rgba(11, 92, 173, 0.15)"
FEW_COLOUR = "#8a94a0"  # small samples: grey, as the pages grey their numbers
LAYOUT = {
    "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
    "hovermode": "x unified",
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, sans-serif", "size": 13},
    "legend": {"orientation": "h", "y": -0.2},
}
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def safe(text: object) -> str:
    return html.escape(str(text), quote=True)


def _has_interval(point: dict) -> bool:
    return point["value"] is not None and point["ci_low"] is not None and point["ci_high"] is not None


def _small(point: dict) -> bool:
    return point["value"] is not None and point["n"] < SMALL_N


def _runs(points: Sequence[dict]) -> list[list[dict]]:
    """Consecutive points that have an interval (a week without answers ends a run)."""
    runs: list[list[dict]] = [[]]
    for point in points:
        if _has_interval(point):
            runs[-1].append(point)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _band(points: Sequence[dict]) -> tuple[list, list]:
    """The band's outline, one closed shape per run of two or more points, shapes apart by a gap (None).

    One shape over all points would break at every empty week, and Plotly would then close each piece on
    itself: the points before the first empty week lost their band.
    """
    xs: list = []
    ys: list = []
    for run in _runs(points):
        if len(run) < 2:
            continue  # a lone point has no width to fill: it gets an error bar
        if xs:
            xs.append(None)
            ys.append(None)
        xs += [p["date"] for p in run] + [p["date"] for p in reversed(run)]
        ys += [p["ci_high"] for p in run] + [p["ci_low"] for p in reversed(run)]
    return xs, ys


def _alone(points: Sequence[dict]) -> list[bool]:
    """Points with an interval whose neighbours have none: a band cannot show them."""
    has = [_has_interval(p) for p in points]
    return [here and not (i > 0 and has[i - 1]) and not (i + 1 < len(has) and has[i + 1]) for i, here in enumerate(has)]


def _error_bars(points: Sequence[dict], wanted: Sequence[bool], colour: str) -> dict | None:
    """Asymmetric error bars on the points `wanted` (and having an interval), or None if there are none."""
    chosen = [_has_interval(p) and w for p, w in zip(points, wanted, strict=True)]
    if not any(chosen):
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": [p["ci_high"] - p["value"] if c else None for p, c in zip(points, chosen, strict=True)],
        "arrayminus": [p["value"] - p["ci_low"] if c else None for p, c in zip(points, chosen, strict=True)],
        "color": colour,
        "thickness": 1.5,
        "width": 4,
    }


def _hover(name: str, point: dict, n_label: str, few_label: str, fmt, fmt_n) -> str:
    if point["value"] is None:
        return f"{name}: – ({safe(n_label)} 0)"
    text = (
        f"{name}: {fmt(point['value'])} ({fmt(point['ci_low'])} – {fmt(point['ci_high'])}), "
        f"{safe(n_label)} {fmt_n(point['n'])}"
    )
    return f"{text}, {safe(few_label)}" if few_label and _small(point) else text


def trend(
    groups: Sequence[dict],
    *,
    value_label: str,
    n_label: str,
    band_label: str,
    fmt: Callable[[float], str],
    fmt_n: Callable[[int], str],
    y_range: tuple[float, float] | None = None,
    locale: str,
    ticks: Sequence[tuple[str, str]] = (),
    few_label: str = "",
) -> dict:
    """One line per group with its 95% band; hover shows the value, the interval and n.

    Every point with answers shows its interval: one series in a band (a lone point between empty weeks as an
    error bar), several series (whose bands would hide each other) as error bars on their small samples.
    `ticks` are (ISO date, label in the reader's language) pairs for the time axis.
    """
    data = []
    for index, group in enumerate(groups):
        colour = PALETTE[index % len(PALETTE)]
        name = safe(group["name"])
        points = group["points"]
        xs = [p["date"] for p in points]
        if len(groups) == 1:
            band_x, band_y = _band(points)
            data.append(
                {
                    "type": "scatter",
                    "x": band_x,
                    "y": band_y,
                    "fill": "toself",
                    "fillcolor": BAND,
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "name": safe(band_label),
                    "showlegend": True,
                }
            )
            errors = _error_bars(points, _alone(points), colour)
        else:
            errors = _error_bars(points, [_small(p) for p in points], colour)
        line = {
            "type": "scatter",
            "mode": "lines+markers",
            "x": xs,
            "y": [p["value"] for p in points],
            "name": name,
            "line": {"color": colour, "width": 2},
            "marker": {
                "size": 6,
                "color": [FEW_COLOUR if _small(p) else colour for p in points],
                "symbol": ["circle-open" if _small(p) else "circle" for p in points],
            },
            "text": [_hover(name, p, n_label, few_label, fmt, fmt_n) for p in points],
            "hovertemplate": "%{text}<extra></extra>",
            "connectgaps": False,
        }
        if errors:
            line["error_y"] = errors
        data.append(line)
    layout = {**LAYOUT, "xaxis": {"type": "date"}, "yaxis": {"title": {"text": safe(value_label)}, "zeroline": True}}
    if ticks:
        layout["xaxis"] = {
            "type": "date",
            "tickmode": "array",
            "tickvals": [t[0] for t in ticks],
            "ticktext": [safe(t[1]) for t in ticks],
        }
    if y_range:
        layout["yaxis"]["range"] = list(y_range)
    return localized({"data": data, "layout": layout, "config": CONFIG}, locale)


def bars(
    labels: Sequence[str],
    values: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    ns: Sequence[int],
    *,
    value_label: str,
    n_label: str,
    fmt: Callable[[float], str],
    fmt_n: Callable[[int], str],
    locale: str,
    few_label: str = "",
) -> dict:
    """Bars with 95% error bars (e.g. the metric by days since the sale); small samples grey."""
    plus = [(h - v) if v is not None and h is not None else None for v, h in zip(values, highs, strict=True)]
    minus = [(v - lo) if v is not None and lo is not None else None for v, lo in zip(values, lows, strict=True)]
    points = [
        {"value": v, "ci_low": lo, "ci_high": h, "n": n} for v, lo, h, n in zip(values, lows, highs, ns, strict=True)
    ]
    data = [
        {
            "type": "bar",
            "x": [safe(label) for label in labels],
            "y": list(values),
            "marker": {"color": [FEW_COLOUR if _small(p) else PALETTE[0] for p in points]},
            "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": "#1b1f24"},
            "text": [
                _hover(safe(label), p, n_label, few_label, fmt, fmt_n) for label, p in zip(labels, points, strict=True)
            ],
            "hovertemplate": "%{text}<extra></extra>",
            "textposition": "none",
        }
    ]
    layout = {**LAYOUT, "hovermode": "closest", "yaxis": {"title": {"text": safe(value_label)}}, "showlegend": False}
    return localized({"data": data, "layout": layout, "config": CONFIG}, locale)


def shared_range(series: Iterable[Sequence[dict]], scale: tuple[float, float]) -> tuple[float, float] | None:
    """One y-range that holds every value of every series, padded a little, within the metric's scale.

    Sparklines of one table drawn each on its own range make a wobble of 2 points look like a fall of 50.
    """
    values = [p["value"] for points in series for p in points if p["value"] is not None]
    if not values:
        return None
    low, high = min(values), max(values)
    pad = max((high - low) * 0.1, (scale[1] - scale[0]) * 0.02)
    return max(low - pad, scale[0]), min(high + pad, scale[1])


def sparkline(
    points: Sequence[dict], fmt: Callable[[float], str], *, locale: str, y_range: tuple[float, float] | None = None
) -> dict:
    """A tiny trend line for a table row, on the table's shared `y_range`."""
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": [p["date"] for p in points],
            "y": [p["value"] for p in points],
            "line": {"color": PALETTE[0], "width": 2},
            "hoverinfo": "text",
            "text": [fmt(p["value"]) if p["value"] is not None else "–" for p in points],
        }
    ]
    layout = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "height": 36,
        "width": 140,
        "showlegend": False,
        "xaxis": {"visible": False},
        "yaxis": {"visible": False, **({"range": list(y_range)} if y_range else {})},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    return localized({"data": data, "layout": layout, "config": {"staticPlot": True}}, locale)


QUADRANT_CELLS = {"at_risk": (0, 0), "satisfied_not_loyal": (1, 0), "loyal_not_satisfied": (0, 1), "loyal": (1, 1)}
QUADRANT_COLOURS = {"at_risk": "#b91c1c", "satisfied_not_loyal": "#c2410c", "loyal_not_satisfied": "#7c3aed",
                    "loyal": "#15803d"}  # fmt: skip


def _wrap(text: str, width: int = 14) -> str:
    """The label in lines of about `width` characters, broken at spaces and escaped: Plotly never wraps text."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(safe(line) for line in lines)


def _tint(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha:.2f})"


def quadrant(counts: dict[str, int], labels: dict[str, str], fmt_n: Callable[[int], str], *, locale: str) -> dict:
    """The four loyalty groups as a 2x2 grid (satisfied across, loyal up). Each cell is tinted by its share of the
    customers, names its group at the top (wrapped to fit a phone) and shows its count below: nothing overlaps."""
    total = max(sum(counts.values()), 1)
    share = {k: counts.get(k, 0) / total for k in QUADRANT_CELLS}
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "y",
            "x0": x,
            "x1": x + 1,
            "y0": y,
            "y1": y + 1,
            "fillcolor": _tint(QUADRANT_COLOURS[k], 0.06 + 0.3 * share[k]),
            "line": {"width": 0},
            "layer": "below",
        }
        for k, (x, y) in QUADRANT_CELLS.items()
    ]
    divider = {"type": "line", "xref": "x", "yref": "y", "line": {"color": FEW_COLOUR, "width": 1}}
    shapes += [{**divider, "x0": 1, "x1": 1, "y0": 0, "y1": 2}, {**divider, "x0": 0, "x1": 2, "y0": 1, "y1": 1}]
    annotations = [
        {
            "x": x + 0.5,
            "y": y + 0.95,
            "xref": "x",
            "yref": "y",
            "yanchor": "top",
            "text": _wrap(labels[k]),
            "showarrow": False,
            "font": {"size": 12},
        }
        for k, (x, y) in QUADRANT_CELLS.items()
    ]
    data = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "x": [x + 0.5 for x, _ in QUADRANT_CELLS.values()],
            "y": [y + 0.3 for _, y in QUADRANT_CELLS.values()],
            "text": [fmt_n(counts.get(k, 0)) for k in QUADRANT_CELLS],
            "textposition": "middle center",
            "textfont": {"size": 16},
            "customdata": [f"{safe(labels[k])}: {fmt_n(counts.get(k, 0))}" for k in QUADRANT_CELLS],
            "marker": {
                "size": [18 + 30 * share[k] for k in QUADRANT_CELLS],
                "color": [QUADRANT_COLOURS[k] for k in QUADRANT_CELLS],
                "opacity": 0.35,
            },
            "hovertemplate": "%{customdata}<extra></extra>",
        }
    ]
    layout = {
        **LAYOUT,
        "height": 340,
        "margin": {"l": 4, "r": 4, "t": 4, "b": 4},
        "hovermode": "closest",
        "showlegend": False,
        "shapes": shapes,
        "annotations": annotations,
        "xaxis": {"visible": False, "range": [0, 2], "fixedrange": True},
        "yaxis": {"visible": False, "range": [0, 2], "fixedrange": True},
    }
    return localized({"data": data, "layout": layout, "config": CONFIG}, locale)


def scatter(
    series: Sequence[dict],
    *,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    locale: str,
) -> dict:
    """Labelled points, one trace per series ({"name", "points": [{"x", "y", "label"}]}); hover names the point
    and both values, formatted by Plotly with the locale's separators."""
    data = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": safe(one["name"]),
            "x": [p["x"] for p in one["points"]],
            "y": [p["y"] for p in one["points"]],
            "text": [safe(p["label"]) for p in one["points"]],
            "textposition": "top center",
            "marker": {"size": 12, "color": PALETTE[index % len(PALETTE)]},
            "cliponaxis": False,  # a point at the end of the scale is drawn whole
            "hovertemplate": f"%{{text}}: {safe(x_label)} %{{x:.1f}}, {safe(one['name'])} %{{y:.1f}}<extra></extra>",
        }
        for index, one in enumerate(series)
    ]
    layout = {
        **LAYOUT,
        "hovermode": "closest",
        "margin": {**LAYOUT["margin"], "t": 32, "b": 56},  # room for the names of points at the top
        "legend": {**LAYOUT["legend"], "y": -0.3},  # below the x axis's title
        "xaxis": {"title": {"text": safe(x_label)}, "range": list(x_range)},
        "yaxis": {"title": {"text": safe(y_label)}, "range": list(y_range)},
    }
    return localized({"data": data, "layout": layout, "config": CONFIG}, locale)


# What plotly.js itself may show in our charts (mode bar tooltips, notices): its own words, in our catalog.
PLOTLY_WORDS = (
    N_("Download plot as a PNG"),
    N_("Download plot"),
    N_("Preparing image - this may take a few seconds"),
    N_("Image download succeeded"),
    N_("Sorry, there was a problem downloading your image!"),
    N_("Zoom"),
    N_("Pan"),
    N_("Zoom in"),
    N_("Zoom out"),
    N_("Autoscale"),
    N_("Reset axes"),
    N_("Double-click to zoom back out"),
    N_("Double-click on legend to isolate one trace"),
)
_CLDR_TO_D3 = {
    "y": "%Y", "yy": "%y", "yyy": "%Y", "yyyy": "%Y",
    "M": "%-m", "MM": "%m", "MMM": "%b", "MMMM": "%B", "L": "%-m", "LL": "%m", "LLL": "%b", "LLLL": "%B",
    "d": "%-d", "dd": "%d",
    "E": "%a", "EE": "%a", "EEE": "%a", "EEEE": "%A", "c": "%a", "ccc": "%a", "cccc": "%A",
    "H": "%-H", "HH": "%H", "h": "%-I", "hh": "%I", "m": "%-M", "mm": "%M", "s": "%-S", "ss": "%S", "a": "%p",
}  # fmt: skip


def d3_format(pattern: str) -> str:
    """A CLDR date pattern ('d MMM y', "d 'de' MMMM") as the d3 time format Plotly reads ('%-d %b %Y')."""
    out = []
    for match in re.finditer(r"'(?P<quoted>(?:[^']|'')*)'|(?P<field>([A-Za-z])\3*)|(?P<literal>.)", pattern):
        if match["field"]:
            out.append(_CLDR_TO_D3.get(match["field"], ""))
        else:
            text = match["literal"] if match["literal"] is not None else (match["quoted"].replace("''", "'") or "'")
            out.append(text.replace("%", "%%"))
    return "".join(out).strip()


def plotly_locale(locale: str) -> dict:
    """Plotly's locale entry (config.locales[locale]) built from Babel's CLDR data and our catalog."""
    return {"dictionary": {word: i18n.translate(locale, word) for word in PLOTLY_WORDS}, "format": _format(locale)}


@functools.cache
def _format(locale: str) -> dict:
    """Plotly's (d3's) names and formats for dates and numbers in `locale`, from CLDR."""
    babel_locale = Locale.parse(locale)
    skeletons = babel_locale.datetime_skeletons

    def names(kind: Callable, width: str, keys: Sequence[int]) -> list[str]:
        found = kind(width, context="stand-alone", locale=locale)
        return [found[key] for key in keys]

    days = [6, 0, 1, 2, 3, 4, 5]  # Babel counts from Monday, Plotly (d3) from Sunday
    months = range(1, 13)
    periods = babel_locale.day_periods["format"]["abbreviated"]
    return {
        "days": names(get_day_names, "wide", days),
        "shortDays": names(get_day_names, "abbreviated", days),
        "months": names(get_month_names, "wide", months),
        "shortMonths": names(get_month_names, "abbreviated", months),
        "periods": [periods["am"], periods["pm"]],
        "date": d3_format(babel_locale.date_formats["short"].pattern),
        "time": d3_format(babel_locale.time_formats["short"].pattern),
        "dateTime": d3_format(
            f"{babel_locale.date_formats['medium'].pattern} {babel_locale.time_formats['short'].pattern}"
        ),
        "decimal": get_decimal_symbol(locale),
        "thousands": get_group_symbol(locale),
        "grouping": [3],
        "year": "%Y",
        "month": d3_format(skeletons["yMMM"].pattern),
        "dayMonth": d3_format(skeletons["MMMd"].pattern),
        "dayMonthYear": d3_format(skeletons["yMMMd"].pattern),
    }


def localized(figure: dict, locale: str) -> dict:
    """The figure speaking `locale`: Plotly's locale in its config, the locale's separators for every number
    Plotly formats (ticks, %{y:.1f} in hover templates) and its date format for hover dates on date axes."""
    words = plotly_locale(locale)
    layout = dict(figure.get("layout") or {})
    layout["separators"] = words["format"]["decimal"] + words["format"]["thousands"]
    for key in [k for k in layout if re.fullmatch(r"xaxis\d*", k)]:
        if layout[key].get("type") == "date":
            layout[key] = {**layout[key], "hoverformat": words["format"]["dayMonthYear"]}
    config = {**(figure.get("config") or {}), "locale": locale, "locales": {locale: words}}
    if config.get("staticPlot"):  # no mode bar, no notices: the words would only weigh on the page
        config["locales"] = {locale: {"format": words["format"]}}
    return {**figure, "layout": layout, "config": config}
