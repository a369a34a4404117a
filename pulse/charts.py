"""Plotly figures as plain data: trends with their 95% band, bars with error bars, sparklines.

Pure: series in, figure JSON out. Every label is already translated and every number formatted for the
reader's locale by the caller's `fmt`; user text is escaped here, because Plotly renders hover text as HTML.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

PALETTE = ["#0b5cad", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"]
BAND = "rgba(11, 92, 173, 0.15)"
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


def trend(
    groups: Sequence[dict],
    *,
    value_label: str,
    n_label: str,
    band_label: str,
    fmt: Callable[[float], str],
    fmt_n: Callable[[int], str],
    y_range: tuple[float, float] | None = None,
    ticks: Sequence[tuple[str, str]] = (),
) -> dict:
    """One line per group with its 95% band; hover shows the value, the interval and n.

    `ticks` are (ISO date, label in the reader's language) pairs for the time axis.
    """
    data = []
    for index, group in enumerate(groups):
        colour = PALETTE[index % len(PALETTE)]
        name = safe(group["name"])
        points = group["points"]
        xs = [p["date"] for p in points]
        lows = [p["ci_low"] for p in points]
        highs = [p["ci_high"] for p in points]
        if len(groups) == 1:  # one series: draw its band (several bands would hide each other)
            data.append(
                {
                    "type": "scatter",
                    "x": xs + xs[::-1],
                    "y": highs + lows[::-1],
                    "fill": "toself",
                    "fillcolor": BAND,
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "name": safe(band_label),
                    "showlegend": True,
                }
            )
        hover = [
            f"{name}: {fmt(p['value'])} ({fmt(p['ci_low'])} – {fmt(p['ci_high'])}), {safe(n_label)} {fmt_n(p['n'])}"
            if p["value"] is not None
            else f"{name}: – ({safe(n_label)} 0)"
            for p in points
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": xs,
                "y": [p["value"] for p in points],
                "name": name,
                "line": {"color": colour, "width": 2},
                "marker": {"size": 5},
                "text": hover,
                "hovertemplate": "%{text}<extra></extra>",
                "connectgaps": False,
            }
        )
    layout = {**LAYOUT, "yaxis": {"title": {"text": safe(value_label)}, "zeroline": True}}
    if ticks:
        layout["xaxis"] = {
            "tickmode": "array",
            "tickvals": [t[0] for t in ticks],
            "ticktext": [safe(t[1]) for t in ticks],
        }
    if y_range:
        layout["yaxis"]["range"] = list(y_range)
    return {"data": data, "layout": layout, "config": CONFIG}


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
) -> dict:
    """Bars with 95% error bars (e.g. the metric by days since the sale)."""
    plus = [(h - v) if v is not None and h is not None else None for v, h in zip(values, highs, strict=True)]
    minus = [(v - lo) if v is not None and lo is not None else None for v, lo in zip(values, lows, strict=True)]
    hover = [
        f"{safe(label)}: {fmt(v)} ({fmt(lo)} – {fmt(h)}), {safe(n_label)} {fmt_n(n)}"
        if v is not None
        else f"{safe(label)}: – ({safe(n_label)} 0)"
        for label, v, lo, h, n in zip(labels, values, lows, highs, ns, strict=True)
    ]
    data = [
        {
            "type": "bar",
            "x": [safe(label) for label in labels],
            "y": list(values),
            "marker": {"color": PALETTE[0]},
            "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": "#1b1f24"},
            "text": hover,
            "hovertemplate": "%{text}<extra></extra>",
            "textposition": "none",
        }
    ]
    layout = {**LAYOUT, "hovermode": "closest", "yaxis": {"title": {"text": safe(value_label)}}, "showlegend": False}
    return {"data": data, "layout": layout, "config": CONFIG}


def sparkline(points: Sequence[dict], fmt: Callable[[float], str]) -> dict:
    """A tiny trend line for a table row."""
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
        "yaxis": {"visible": False},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout, "config": {"staticPlot": True}}


def quadrant(counts: dict[str, int], labels: dict[str, str], fmt_n: Callable[[int], str]) -> dict:
    """The four loyalty groups as a 2x2 grid of sized squares (satisfied across, loyal up)."""
    positions = {"at_risk": (0, 0), "satisfied_not_loyal": (1, 0), "loyal_not_satisfied": (0, 1), "loyal": (1, 1)}
    total = max(sum(counts.values()), 1)
    data = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "x": [positions[k][0] for k in positions],
            "y": [positions[k][1] for k in positions],
            "text": [f"{safe(labels[k])}<br>{fmt_n(counts.get(k, 0))}" for k in positions],
            "textposition": "middle center",
            "marker": {
                "size": [30 + 90 * counts.get(k, 0) / total for k in positions],
                "color": ["#b91c1c", "#c2410c", "#7c3aed", "#15803d"],
                "opacity": 0.35,
            },
            "hovertemplate": "%{text}<extra></extra>",
        }
    ]
    layout = {
        **LAYOUT,
        "hovermode": "closest",
        "showlegend": False,
        "xaxis": {"visible": False, "range": [-0.6, 1.6]},
        "yaxis": {"visible": False, "range": [-0.6, 1.6]},
    }
    return {"data": data, "layout": layout, "config": CONFIG}
