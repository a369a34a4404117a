"""Customers at risk: the dashboard page a manager works every week, and GET /api/v1/insights/at-risk."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import fields, risk
from pulse.errors import BadRequest
from pulse.models import Team
from pulse.teams import subtree_ids
from pulse.web.auth import api_key
from pulse.web.dashboard import _filters, _form, _team_ids, page

PAGE_LIMIT = 100  # the page shows the riskiest hundred; the API goes up to API_LIMIT
API_LIMIT = 1000


async def _listed(request: Request, team_ids) -> list[risk.Risk]:
    state = request.app.state
    return risk.listed(await risk.assess(state.catalog, state.risk, team_ids=team_ids), state.risk)


async def get_at_risk(request: Request) -> Response:
    """The customers whose risk score reaches the threshold, riskiest first, each with the reasons."""
    await api_key(request, "analytics:read")
    params = request.query_params
    limit = fields.whole_number(params.get("limit") or "100", "limit", 1, API_LIMIT)
    slug = params.get("team") or None
    team_ids = None
    if slug is not None:
        team = await Team.get_or_none(slug=fields.TEAM.check(slug, "team"))
        if team is None:
            raise BadRequest(f"No team has the slug {slug!r}.")
        team_ids = await subtree_ids(team.id)
    found = await _listed(request, team_ids)
    state = request.app.state
    return JSONResponse(
        {
            "team": slug,
            "threshold": state.risk.threshold,
            "listed": len(found),
            "customers": await risk.describe(
                found[:limit], state.catalog, state.risk, "en", state.settings.company_name
            ),
        }
    )


async def at_risk_page(request: Request) -> Response:
    """Customers at risk for the chosen team (a manager: one of theirs), with why, linking to each contact."""
    p = await page(request, "dashboards")
    team, chosen = await _filters(p)
    chosen.errors = {name: text for name, text in chosen.errors.items() if name == "team"}  # only team is shown
    form = await _form(p, chosen, team, ("team",), None, None)
    if chosen.errors:
        return p.render("dashboard/at_risk.html", {**form, "people": [], "listed": 0}, status_code=400)
    ids = await _team_ids(p, team)
    found = await _listed(request, ids)
    state = request.app.state
    people = await risk.describe(found[:PAGE_LIMIT], state.catalog, state.risk, p.locale, state.settings.company_name)
    return p.render(
        "dashboard/at_risk.html",
        {
            **form,
            "people": people,
            "listed": len(found),
            "shown_count": len(people),
            "threshold": state.risk.threshold,
            "signal_names": {code: p.t(name) for code, name in risk.SIGNAL_NAMES.items()},
        },
    )


ROUTES = [
    Route("/dashboard/at-risk", at_risk_page, name="dashboard_at_risk"),
    Route("/api/v1/insights/at-risk", get_at_risk, methods=["GET"], name="api_at_risk"),
]
