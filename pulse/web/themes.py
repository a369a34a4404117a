"""What the comments are about: the themes page (/dashboard/themes) and GET /api/v1/insights/themes.

Both read the same summary (pulse.themes.summarize) of one customer survey's comments for a team and period.
Employee surveys are never offered here: their comments stay on the engagement page, behind its anonymity
checks, and no answer of an employee leaves the server through this view.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import charts, db, fields, i18n, themes
from pulse.errors import BadRequest, NotFound
from pulse.i18n import N_
from pulse.models import Team
from pulse.teams import subtree_ids
from pulse.web.analytics import today
from pulse.web.auth import api_key
from pulse.web.dashboard import (
    DEFAULT_DAYS,
    Page,
    _team_ids,
    _title,
    figure,
    page,
    survey_period_form,
)

MOST_COMMENTS = 20_000  # the newest comments of the period a summary reads; a page stays quick on any database
UNHAPPY_COLOUR, TOP_COLOUR = "#b91c1c", "#15803d"


async def read_comments(survey_id: str, team_ids: list[int] | None, start: date, end: date) -> list[themes.Comment]:
    """The confirmed, non-empty comments on a customer survey between two days, newest first; nothing of who."""
    conditions = ["confirmed = ?", "discarded = ?", "survey_id = ?", "comment <> ''", "day >= ?", "day <= ?"]
    params: list = [True, False, survey_id, start, end]
    if team_ids is not None:
        conditions.append(f"team_id IN ({db.marks(len(team_ids))})" if team_ids else "1 = 0")
        params += team_ids
    sql = (
        f"SELECT comment, score, locale, day FROM response WHERE {' AND '.join(conditions)} "  # noqa: S608
        f"ORDER BY day DESC, id DESC LIMIT {MOST_COMMENTS}"
    )
    rows = await db.fetch(sql, params)
    return [
        themes.Comment(text, score, locale, day if isinstance(day, date) else date.fromisoformat(day))
        for text, score, locale, day in rows
    ]


async def summarize(found: themes.Themes, survey, comments: list[themes.Comment], start: date, end: date) -> dict:
    """pulse.themes.summarize in a worker thread: the first comments of a language load its dictionary (seconds for
    Polish) and a long period reads thousands of comments; meanwhile the event loop keeps serving other requests."""
    return await asyncio.to_thread(themes.summarize, found, survey, comments, start, end)


def _ranges(survey) -> dict[str, str]:
    """The scores of each group in words: "0–6" (the unhappy bands), "9–10" (the top band)."""
    unhappy = [band for band in survey.bands if band.unhappy]
    top = survey.bands[-1]

    def span(low: int, high: int) -> str:
        return str(low) if low == high else f"{low}–{high}"

    return {
        "unhappy": span(min(b.low for b in unhappy), max(b.high for b in unhappy)) if unhappy else "",
        "top": span(top.low, top.high),
    }


def _figure(p: Page, summary: dict, labels: dict[str, str], names: dict[str, str]) -> dict:
    """Share of the unhappy and of the top-band comments that mention each theme, side by side."""
    rows = [row for row in summary["themes"] if row["total"]][::-1]  # Plotly draws the first bar at the bottom
    data = []
    for group, colour in (("unhappy", UNHAPPY_COLOUR), ("top", TOP_COLOUR)):
        shares = [row["shares"][group] or 0 for row in rows]
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": names[group],
                "y": [charts.safe(labels[row["id"]]) for row in rows],
                "x": shares,
                "marker": {"color": colour},
                "hoverinfo": "text",
                "hovertext": [
                    f"{charts.safe(names[group])}: {p.count(row['counts'][group])} ({i18n.percent(share, p.locale)})"
                    for row, share in zip(rows, shares, strict=True)
                ],
            }
        )
    layout = {
        "barmode": "group",
        "height": 120 + 48 * len(rows),
        "margin": {"l": 10, "r": 10, "t": 10, "b": 40},
        "xaxis": {"tickformat": ".0%", "rangemode": "tozero"},
        "yaxis": {"automargin": True},
        "legend": {"orientation": "h", "y": -0.15},
    }
    return charts.localized({"data": data, "layout": layout, "config": {"displayModeBar": False}}, p.locale)


async def dashboard_themes(request: Request) -> Response:
    """Themes of one survey's comments for a team and period: among unhappy and top scores, trend, examples."""
    p = await page(request, "dashboards")
    team, chosen, survey, _, form = await survey_period_form(p, DEFAULT_DAYS)
    start, end = form["start"], form["end"]
    if chosen.errors:
        return p.render("dashboard/themes.html", {**form, "summary": None, "notice": None}, status_code=400)
    found = themes.load(p.state.settings.surveys_dir)
    comments = await read_comments(survey.id, await _team_ids(p, team), start, end)
    summary = await summarize(found, survey, comments, start, end)
    ranges = _ranges(survey)
    names = {
        "unhappy": p.t("Unhappy scores (%(range)s)", range=ranges["unhappy"]),
        "top": p.t("Top scores (%(range)s)", range=ranges["top"]),
        "other": p.t("Scores in between"),
    }
    notice = None
    if not len(found):
        notice = {"text": p.t("No themes are set up: add them to surveys/insights/themes.toml.")}
    elif not comments:
        title = _title(p, survey)
        notice = {
            "text": p.t("No comment on %(survey)s from this team in this period.", survey=title)
            if team
            else p.t("No comment on %(survey)s in this period.", survey=title)
        }
    labels = {theme.id: theme.label(p.locale) for theme in found}
    drawn = any(row["total"] for row in summary["themes"])
    return p.render(
        "dashboard/themes.html",
        {
            **form,
            "summary": summary if notice is None else None,
            "notice": notice,
            "labels": labels,
            "names": names,
            "figure": figure(_figure(p, summary, labels, names)) if notice is None and drawn else None,
            "sparks": {
                row["id"]: figure(
                    charts.sparkline(
                        [{"date": point["period"].isoformat(), "value": point["count"]} for point in row["trend"]],
                        p.count,
                        locale=p.locale,
                    )
                )
                for row in summary["themes"]
            },
        },
    )


# --- the API ----------------------------------------------------------------------------------------------------


async def api_themes(request: Request) -> Response:
    """The themes of one customer survey's comments for a team (with its sub-teams) and period, as JSON."""
    await api_key(request, "analytics:read")
    state = request.app.state
    params = request.query_params
    survey_id = params.get("survey") or ""
    survey = state.catalog.get(survey_id)
    if survey is None or survey.audience != "customer":
        offered = ", ".join(s.id for s in state.catalog if s.audience == "customer")
        raise BadRequest(f"survey must be one of the customer surveys: {offered}.")
    end = fields.parse_date(params["to"], "to") if params.get("to") else today(request)
    start = fields.parse_date(params["from"], "from") if params.get("from") else end - timedelta(days=DEFAULT_DAYS)
    if start > end:
        raise BadRequest("from must not be after to.")
    if (end - start).days > 3 * 366:
        raise BadRequest("The period must not be longer than three years.")
    ids = None
    slug = params.get("team") or None
    if slug is not None:
        if len(slug) > 64 or fields.unstorable(slug):
            raise BadRequest("team must be a team's slug (at most 64 characters).")
        found_team = await Team.get_or_none(slug=slug)
        if found_team is None:
            raise NotFound(N_("No such team."))
        ids = await subtree_ids(found_team.id)
    found = themes.load(state.settings.surveys_dir)
    summary = await summarize(found, survey, await read_comments(survey.id, ids, start, end), start, end)
    return JSONResponse(
        {
            "survey": survey.id,
            "team": slug,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "interval": summary["interval"],
            "comments": summary["comments"],
            "untagged": summary["untagged"],
            "themes": [
                {
                    "id": row["id"],
                    "label": dict(found.get(row["id"]).labels),
                    "counts": row["counts"],
                    "total": row["total"],
                    "shares": row["shares"],
                    "trend": [{"period": p["period"].isoformat(), "count": p["count"]} for p in row["trend"]],
                    "examples": [{**e, "day": e["day"].isoformat()} for e in row["examples"]],
                }
                for row in summary["themes"]
            ],
        }
    )


ROUTES = [
    Route("/dashboard/themes", dashboard_themes, name="dashboard_themes"),
    Route("/api/v1/insights/themes", api_themes, methods=["GET"], name="api_themes"),
]


def check(settings) -> None:
    """Read the themes file once at start-up: one that does not validate stops the app with its faults listed."""
    themes.load(settings.surveys_dir)
