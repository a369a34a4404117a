"""Recovery after a case, per team: the cases page's report (/cases/recovery) and GET /api/v1/cases/recovery."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import fields, recovery, teams
from pulse.errors import BadRequest
from pulse.i18n import N_
from pulse.models import Team
from pulse.web import filters
from pulse.web.auth import api_key
from pulse.web.cases import filtered, team_choices, team_filter
from pulse.web.dashboard import Page

DEFAULT_DAYS = 90  # the cases opened in the last 90 days, when no dates are given
NO_TEAM = N_("No team")


def default_period(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS - 1), today


async def recovery_page(request: Request) -> Response:
    """Per team of the reader's scope: time to first contact, time to resolve, detractors recovered."""
    return await filtered(request, "cases", _page)


async def _page(p: Page) -> Response:
    team, ids = await team_filter(p)  # a team that is not the reader's: the bad-filter page (400)
    raw = {name: p.request.query_params.get(name) or "" for name in ("from", "to")}
    errors: dict[str, str] = {}
    dates = filters.read_dates(raw, errors, p.t, lambda name: p.t(filters.FIELD_LABELS[name]))
    since, until = default_period(p.today())
    since, until = dates.get("from", since), dates.get("to", until)
    if since > until and "to" not in errors:
        errors["from"] = p.t("'%(since)s' must be on or before '%(until)s'.", since=p.t("Since"), until=p.t("Until"))
    form = {
        "from": raw["from"] if "from" in errors else since.isoformat(),
        "to": raw["to"] if "to" in errors else until.isoformat(),
    }
    context = {
        "team": team,
        "teams": await team_choices(p),
        "form": form,
        "errors": errors,
        "date_min": fields.EARLIEST.isoformat(),
        "date_max": p.today().isoformat(),
        "rows": [],
        "total": None,
        "setting_on": p.state.settings.recovery_followup,
    }
    if errors:
        return p.render("dashboard/recovery.html", context, status_code=400)
    found = await recovery.report(p.state.catalog, p.state.settings, ids, since, until)
    rows = [
        {"name": found.names.get(team_id, ("", p.t(NO_TEAM)))[1], **shown(figures)}
        for team_id, figures in found.teams.items()
    ]
    rows.sort(key=lambda row: row["name"].lower())
    return p.render("dashboard/recovery.html", {**context, "rows": rows, "total": shown(found.total)})


def shown(figures: recovery.Figures) -> dict:
    """The figures as the page shows them: durations as timedelta (the template's `duration` filter words them)."""
    data = figures.as_json()
    for name in ("first_contact", "resolution"):
        for kind in ("median", "mean"):
            seconds = data[name][f"{kind}_seconds"]
            data[name][kind] = None if seconds is None else timedelta(seconds=seconds)
    return data


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date such as 2026-03-01.") from None
    if not fields.in_range(value):
        raise BadRequest(f"{name} must be a date from {fields.EARLIEST} to {fields.LATEST}, not {raw!r}.")
    return value


async def api_recovery(request: Request) -> Response:
    """The report as JSON: per team and in total, for the cases opened from `from` to `to` (days, inclusive)."""
    await api_key(request, "cases:read")
    state = request.app.state
    params = request.query_params
    unknown = sorted(set(params) - {"team", "from", "to"})
    if unknown:
        raise BadRequest(f"Unknown parameter {', '.join(unknown)}: this report takes team, from and to.")
    ids = None
    if slug := params.get("team"):
        team = await Team.get_or_none(slug=fields.TEAM.check(slug, "team"))
        if team is None:
            raise BadRequest(f"No team has the slug {slug!r}.")
        ids = await teams.subtree_ids(team.id)
    since, until = default_period(_today(state.settings.timezone))
    since = _day(params.get("from"), "from") or (
        since if not params.get("to") else _day(params["to"], "to") - timedelta(days=DEFAULT_DAYS - 1)
    )
    until = _day(params.get("to"), "to") or until
    if since > until:
        raise BadRequest("from must be on or before to.")
    found = await recovery.report(state.catalog, state.settings, ids, since, until)
    rows = [
        {"team": found.names[team_id][0] if team_id in found.names else None, **figures.as_json()}
        for team_id, figures in sorted(found.teams.items(), key=lambda item: found.names.get(item[0], ("",))[0])
    ]
    return JSONResponse(
        {"from": since.isoformat(), "to": until.isoformat(), "teams": rows, "total": found.total.as_json()}
    )


def _today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


ROUTES = [
    # before /cases/{case_id} and /api/v1/cases/{case_id}, which would take "recovery" for an id
    Route("/cases/recovery", recovery_page, name="case_recovery"),
    Route("/api/v1/cases/recovery", api_recovery, methods=["GET"], name="api_case_recovery"),
]
