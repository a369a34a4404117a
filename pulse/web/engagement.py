"""Employee engagement for HR (and managers, for their teams): API and page, every number behind anonymity."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import access, charts, engagement, fields, metrics, trends
from pulse.catalog import localized
from pulse.errors import BadRequest, NotFound
from pulse.i18n import N_
from pulse.models import Invitation, PulseRound, Team
from pulse.web.auth import api_key
from pulse.web.dashboard import figure, page


async def _round(request: Request, survey, number: str | None) -> PulseRound:
    query = PulseRound.filter(survey_id=survey.id, status="closed")
    if number:
        found = await query.filter(number=fields.whole_number(number, "round", 1, fields.LARGEST_ID)).first()
    else:
        found = await query.order_by("-number").first()
    if found is None:
        if number:
            raise NotFound(N_("No closed round %(number)s."), number=number)
        raise NotFound(N_("No closed round yet."))
    return found


def _survey(request: Request):
    survey = engagement.programme(request.app.state.catalog)
    if survey is None:
        raise NotFound(N_("No engagement programme is defined in surveys/."))
    return survey


async def api_rounds(request: Request) -> Response:
    await api_key(request, "engagement:read")
    survey = _survey(request)
    rounds = await PulseRound.filter(survey_id=survey.id).order_by("number")
    return JSONResponse(
        {
            "rounds": [
                {
                    "number": r.number,
                    "status": r.status,
                    "opens_at": r.opens_at.isoformat(),
                    "closes_at": r.closes_at.isoformat(),
                    "questions": r.questions,
                    "invited": r.invited,
                    "answered": await Invitation.filter(round_id=r.id, status="answered").count(),
                }
                for r in rounds
            ]
        }
    )


async def api_results(request: Request) -> Response:
    await api_key(request, "engagement:read")
    survey = _survey(request)
    pulse_round = await _round(request, survey, request.query_params.get("round"))
    result = await engagement.results(
        survey,
        pulse_round,
        request.app.state.settings,
        request.query_params.get("question"),
        request.query_params.get("by", "team"),
    )
    return JSONResponse(result)


async def comments_for(survey, pulse_round: PulseRound, settings, group: str, question: str | None = None):
    """Comments on a question (default eNPS) from a group, or None when that list may not be shown."""
    question = question or survey.question.id
    if question not in pulse_round.questions:
        raise BadRequest(
            N_("Round %(number)s did not ask %(question)s."), number=pulse_round.number, question=repr(question)
        )
    if group != "company" and not group.startswith("team:"):
        raise BadRequest(N_("group must be company or team:<slug>."))
    return await engagement.comments(pulse_round, question, settings, group)


async def api_comments(request: Request) -> Response:
    await api_key(request, "engagement:read")
    survey = _survey(request)
    pulse_round = await _round(request, survey, request.query_params.get("round"))
    group = request.query_params.get("group", "company")
    found = await comments_for(
        survey, pulse_round, request.app.state.settings, group, request.query_params.get("question")
    )
    if found is None:
        return JSONResponse({"group": group, "suppressed": True, "comments": []})
    return JSONResponse({"group": group, "suppressed": False, "comments": found})


async def ex_cx(survey, pulse_round: PulseRound, settings, catalog, result: dict | None = None) -> list[dict]:
    """Each team's eNPS in a round beside the NPS and CSAT of the customers it served in the same period."""
    result = result or await engagement.results(survey, pulse_round, settings, by="team")
    start = (pulse_round.opens_at - timedelta(days=survey.schedule.every_days if survey.schedule else 14)).date()
    end = pulse_round.closes_at.date()
    rows = []
    for group in result["groups"]:
        if group["group"] == "company":
            continue
        row = {
            "team": group["group"],
            "enps": None if group["suppressed"] else group["value"],
            "enps_n": None if group["suppressed"] else group["n"],
            "suppressed": group["suppressed"],
        }
        for kind in ("nps", "csat"):
            customer = next((s for s in catalog if s.kind == kind), None)
            if customer is None:
                continue
            series = await trends.daily(
                customer.id, customer.question.id, trends.Selection("team", value=group["group"]), start, end
            )
            estimate = metrics.estimate(kind, metrics.add(*series.get(group["group"], {}).values()))
            row[kind], row[f"{kind}_n"] = estimate.value, estimate.n
        rows.append(row)
    return rows


async def api_ex_cx(request: Request) -> Response:
    await api_key(request, "engagement:read")
    survey = _survey(request)
    pulse_round = await _round(request, survey, request.query_params.get("round"))
    state = request.app.state
    return JSONResponse(
        {"round": pulse_round.number, "teams": await ex_cx(survey, pulse_round, state.settings, state.catalog)}
    )


async def hr_page(request: Request) -> Response:
    """eNPS per team of the latest closed round, drivers, comments and EX beside CX, all behind anonymity."""
    p = await page(request, "engagement")
    survey = _survey(request)
    rounds = await PulseRound.filter(survey_id=survey.id, status="closed").order_by("-number").limit(12)
    if not rounds:
        return p.render("dashboard/engagement.html", {"rounds": [], "survey": survey})
    chosen = await _round(request, survey, request.query_params.get("round"))
    settings = p.state.settings
    company = settings.company_name
    # each round's eNPS by team is computed once, then serves the table, the trend and EX beside CX
    by_round = {r.id: await engagement.results(survey, r, settings, by="team") for r in rounds}
    if chosen.id not in by_round:
        by_round[chosen.id] = await engagement.results(survey, chosen, settings, by="team")
    enps = by_round[chosen.id]
    drivers = []
    for question in chosen.questions[1:]:
        result = await engagement.results(survey, chosen, settings, question=question, by="team")
        text = next((q.text for q in survey.questions if q.id == question), {})
        drivers.append({"id": question, "text": localized(text, p.locale, company), "groups": result["groups"]})
    comments = None
    if access.allowed(p.user, "employee_comments"):  # by question: eNPS first, then each driver asked
        comments = []
        for question in chosen.questions:
            text = next((q.text for q in survey.questions if q.id == question), {})
            found = await comments_for(survey, chosen, settings, "company", question)
            comments.append({"question": localized(text, p.locale, company), "comments": found})
    relation = await ex_cx(survey, chosen, settings, p.state.catalog, enps)
    ordered = list(reversed(rounds))
    trend_groups = _enps_trend(ordered, by_round, p.slugs)
    team_names = dict(await Team.all().values_list("slug", "name"))  # groups are slugs; people read names
    over_time = await _ex_cx_over_time(survey, ordered, by_round, p.state.catalog)
    ex_cx_trend = charts.trend(
        over_time,
        value_label=p.t("Score"),
        n_label=p.t("n ="),
        band_label=p.t("95%% interval"),
        fmt=lambda v: p.number(v, 1),
        fmt_n=p.count,
        y_range=(-100, 100),
        locale=p.locale,
    )
    trend = charts.trend(
        [
            {
                **group,
                "name": p.t("Whole company")
                if group["name"] == "company"
                else team_names.get(group["name"], group["name"]),
            }
            for group in trend_groups
        ],
        value_label="eNPS",
        n_label=p.t("n ="),
        band_label=p.t("95%% interval"),
        fmt=lambda v: p.number(v, 1),
        fmt_n=p.count,
        y_range=(-100, 100),
        locale=p.locale,
    )
    rates = await response_rates(chosen, settings.anonymity_min_group)
    if p.slugs is not None:  # a manager: the company baseline and their own teams, nothing of other teams
        mine = {"company", *p.slugs}
        enps = {**enps, "groups": [g for g in enps["groups"] if g["group"] in mine]}
        relation = [r for r in relation if r["team"] in p.slugs]
        rates = {slug: rate for slug, rate in rates.items() if slug in p.slugs}
        ex_cx_trend = None  # company-wide customer scores are not a manager's to see
    columns = [g["group"] for g in enps["groups"]]
    for driver in drivers:  # one cell per column, matched by group name, never by position
        by_group = {g["group"]: g for g in driver.pop("groups")}
        driver["cells"] = [by_group.get(name, {"group": name, "suppressed": True}) for name in columns]
    company_values = {
        d["id"]: next((g["value"] for g in d["cells"] if g["group"] == "company" and not g["suppressed"]), None)
        for d in drivers
    }
    scatter = charts.scatter(
        [
            {
                "name": label,
                "points": [
                    {"x": r["enps"], "y": r[kind], "label": team_names.get(r["team"], r["team"])}
                    for r in relation
                    if r["enps"] is not None and r.get(kind) is not None
                ],
            }
            for kind, label in (("nps", p.t("Customers' NPS")), ("csat", p.t("Customers' CSAT, %%")))
        ],
        x_label="eNPS",
        y_label=p.t("Customers"),
        x_range=(-100, 100),
        y_range=(-100, 100),
        locale=p.locale,
    )
    return p.render(
        "dashboard/engagement.html",
        {
            "survey": survey,
            "rounds": rounds,
            "round": chosen,
            "enps": enps,
            "drivers": drivers,
            "comments": comments,
            "relation": relation,
            "scatter": figure(scatter),
            "k": settings.anonymity_min_group,
            "trend": figure(trend),
            "ex_cx_trend": figure(ex_cx_trend) if ex_cx_trend else None,
            "rates": rates,
            "company_values": company_values,
            "team_names": team_names,
        },
    )


def _point(pulse_round: PulseRound, group: dict) -> dict:
    """A chart point for one round's group: empty where the group is suppressed."""
    point = {"date": pulse_round.closes_at.date().isoformat(), "value": None, "n": 0, "ci_low": None, "ci_high": None}
    if not group["suppressed"]:
        point.update(value=group["value"], n=group["n"], ci_low=group["ci_low"], ci_high=group["ci_high"])
    return point


def _enps_trend(rounds: list[PulseRound], by_round: dict[int, dict], slugs: list[str] | None) -> list[dict]:
    """eNPS per closed round for the company (or a manager's teams), each point behind the same suppression."""
    series: dict[str, list[dict]] = {}
    for pulse_round in rounds:
        for group in by_round[pulse_round.id]["groups"]:
            name = group["group"]
            if (slugs is not None and name not in slugs) or (slugs is None and name != "company"):
                continue
            series.setdefault(name, []).append(_point(pulse_round, group))
    return [{"name": name, "points": points} for name, points in sorted(series.items())]


async def _ex_cx_over_time(survey, rounds: list[PulseRound], by_round: dict[int, dict], catalog) -> list[dict]:
    """Company eNPS per round beside the customers' NPS and CSAT over the same weeks: EX and CX through time."""
    lines: dict[str, list[dict]] = {"eNPS": []}
    for pulse_round in rounds:
        day = pulse_round.closes_at.date().isoformat()
        company = next(g for g in by_round[pulse_round.id]["groups"] if g["group"] == "company")
        lines["eNPS"].append(_point(pulse_round, company))
        start = (pulse_round.opens_at - timedelta(days=survey.schedule.every_days)).date()
        for kind in ("nps", "csat"):
            customer = next((s for s in catalog if s.kind == kind), None)
            if customer is None:
                continue
            series = await trends.daily(
                customer.id,
                customer.question.id,
                trends.Selection("all", value="all"),
                start,
                pulse_round.closes_at.date(),
            )
            estimate = metrics.estimate(kind, metrics.add(*series.get("all", {}).values()))
            lines.setdefault(kind.upper(), []).append(
                {
                    "date": day,
                    "value": estimate.value,
                    "n": estimate.n,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                }
            )
    return [{"name": name, "points": points} for name, points in lines.items()]


async def response_rates(pulse_round: PulseRound, k: int) -> dict[str, float]:
    """Answered / invited per team, only for teams with at least k members invited (smaller ones say too much)."""
    rows = await Invitation.filter(round_id=pulse_round.id).values_list("employee__team__slug", "status")
    invited: dict[str, int] = {}
    answered: dict[str, int] = {}
    for slug, status in rows:
        if slug is None:
            continue
        invited[slug] = invited.get(slug, 0) + 1
        answered[slug] = answered.get(slug, 0) + (status == "answered")
    return {slug: answered[slug] / n for slug, n in invited.items() if n >= k}


ROUTES = [
    Route("/engagement", hr_page, name="engagement"),
    Route("/api/v1/engagement/rounds", api_rounds, methods=["GET"], name="api_engagement_rounds"),
    Route("/api/v1/engagement/results", api_results, methods=["GET"], name="api_engagement_results"),
    Route("/api/v1/engagement/comments", api_comments, methods=["GET"], name="api_engagement_comments"),
    Route("/api/v1/engagement/ex-cx", api_ex_cx, methods=["GET"], name="api_engagement_ex_cx"),
]
