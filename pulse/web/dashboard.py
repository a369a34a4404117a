"""Pages for managers, analysts and admins: overview, breakdowns, loyalty, after the sale, contacts, cases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pulse import access, charts, fields, followups, i18n, insights, metrics, rollups, trends
from pulse.catalog import localized
from pulse.errors import BadRequest, Forbidden, NotFound
from pulse.i18n import N_
from pulse.models import FollowUpCase, Invitation, Team, User
from pulse.web.auth import CSRF_FIELD, check_csrf, csrf_token, set_csrf_cookie
from pulse.web.security import CHART_CSP
from pulse.web.signin import signed_in, user_locale
from pulse.web.templating import render

DIMENSION_LABELS = {
    "touchpoint": N_("Touchpoint"),
    "team": N_("Team"),
    "channel": N_("Channel"),
    "stage": N_("Lifecycle stage"),
    "lifecycle": N_("Days since the sale"),
}
METRIC_LABELS = {"nps": N_("Net Promoter Score"), "csat": N_("Satisfied (4–5), %%"), "ces": N_("Ease of effort (1–7)")}
SCALES = {"nps": (-100, 100), "csat": (0, 100), "ces": (1, 7)}
FEW_ANSWERS = N_("few answers")  # on hover beside n, for values from fewer than metrics.SMALL_N answers
QUADRANT_LABELS = {
    "loyal": N_("Satisfied and loyal"),
    "satisfied_not_loyal": N_("Satisfied but not loyal"),
    "loyal_not_satisfied": N_("Loyal but not satisfied"),
    "at_risk": N_("Neither: at risk"),
}
NO_TEAM = N_(
    "You are not assigned to a team yet, so there is nothing to show. Ask an administrator to add you to a team."
)


class Page:
    """What every dashboard page needs: who is looking, in which language, which teams they may see."""

    def __init__(self, request: Request, user: User, locale: str, slugs: list[str] | None) -> None:
        self.request = request
        self.user = user
        self.locale = locale
        self.slugs = slugs  # None: every team
        self.top: str | None = None  # a manager's own (topmost) team, their default view
        self.state = request.app.state

    def t(self, message: str, **variables: object) -> str:
        return i18n.translate(self.locale, message, **variables)

    def number(self, value: float | None, digits: int = 1) -> str:
        return "–" if value is None else i18n.number(value, self.locale, digits)

    def count(self, value: int) -> str:
        return i18n.number(value, self.locale, 0)

    def today(self) -> date:
        return datetime.now(UTC).astimezone(ZoneInfo(self.state.settings.timezone)).date()

    def team(self) -> str | None:
        """The team filter of the URL, checked against the user's scope (a manager gets their own by default)."""
        slug = self.request.query_params.get("team") or None
        if slug is not None and (len(slug) > 64 or fields.unstorable(slug)):
            raise BadRequest(self.t("No team has this name."))
        if self.slugs is None:
            return slug
        if slug is None:
            return self.top or self.slugs[0]
        if slug not in self.slugs:
            raise Forbidden("This team is not one of yours.")
        return slug

    def render(self, template: str, context: dict, status_code: int = 200) -> Response:
        values = {"user": self.user, "csrf_token": csrf_token(self.request), "nav": self.request.url.path, **context}
        response = render(self.request, template, values, locale=self.locale, status_code=status_code)
        response.headers["content-security-policy"] = CHART_CSP
        return set_csrf_cookie(self.request, response)


class NotAssigned(Forbidden):
    """A manager with no team: every dashboard page says so, and shows nothing else."""

    def __init__(self, page: Page) -> None:
        super().__init__(NO_TEAM)
        self.page = page

    def render(self) -> Response:
        # 403, not 200: nothing of the page was served, and scripts and monitors should not mistake it for data
        return self.page.render("dashboard/not_assigned.html", {"message": NO_TEAM}, status_code=self.status_code)


async def page(request: Request, permission: str) -> Page:
    """The signed-in user's page, if their role allows `permission`; a manager with no team gets NotAssigned."""
    user = await signed_in(request)
    access.require(user, permission)
    found = Page(request, user, user_locale(request, user), await access.team_slugs(user))
    if found.slugs == []:  # scoped to no team: nothing, rather than everything
        raise NotAssigned(found)
    if found.slugs is not None:
        top = await access.top_teams(user)
        found.top = top[0].slug if top else None
    return found


def figure(value: dict) -> Markup:
    """Figure JSON for a <script type="application/json"> block: safe against </script> and friends."""
    text = json.dumps(value, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))  # noqa: S704


def _range(p: Page) -> tuple[str, int, str, date, date]:
    params = p.request.query_params
    window = params.get("window", "28d")
    interval = params.get("interval", "week")
    end = fields.parse_date(params["to"], "to") if params.get("to") else p.today()
    start = fields.parse_date(params["from"], "from") if params.get("from") else end - timedelta(weeks=26)
    valid = window.endswith("d") and fields.WHOLE_NUMBER.fullmatch(window[:-1])
    days = int(window[:-1]) if valid and 1 <= int(window[:-1]) <= trends.MAX_WINDOW_DAYS else 28
    return window, days, interval, start, end


def _query(p: Page, survey_id: str, filters: dict, by: str | None = None) -> trends.TrendQuery:
    window, _, interval, start, end = _range(p)
    params = {
        "survey": survey_id,
        "window": window,
        "interval": interval,
        "from": start.isoformat(),
        "to": end.isoformat(),
        **filters,
    }
    if by:
        params["by"] = by
    return trends.parse_query(params, p.state.catalog, p.state.settings.segment_attributes, end)


def _month_ticks(p: Page, groups: list[dict]) -> list[tuple[str, str]]:
    """One tick per month on the time axis, named in the reader's language."""
    days = sorted({point["date"] for group in groups for point in group["points"]})
    if not days:
        return []
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    ticks, current = [], date(first.year, first.month, 1)
    while current <= last:
        if current >= first:
            ticks.append((current.isoformat(), format_date(current, "LLL yyyy", locale=p.locale)))
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return ticks


def _trend_figure(p: Page, survey, groups: list[dict]) -> dict:
    digits = 2 if survey.kind == "ces" else 1
    return charts.trend(
        groups,
        ticks=_month_ticks(p, groups),
        value_label=p.t(METRIC_LABELS[survey.kind]),
        n_label=p.t("n ="),
        band_label=p.t("95%% interval"),
        few_label=p.t(FEW_ANSWERS),
        fmt=lambda v: p.number(v, digits),
        fmt_n=p.count,
        y_range=SCALES[survey.kind],
    )


async def _team_ids(p: Page, team: str | None) -> list[int] | None:
    if team is None:
        return None if p.slugs is None else list(await access.team_ids(p.user) or [])
    found = await Team.get_or_none(slug=team)
    if found is None:
        raise NotFound("No such team.")
    from pulse.teams import subtree_ids

    return await subtree_ids(found.id)


async def overview(request: Request) -> Response:
    """Loyalty, satisfaction and effort at a glance, each with its band, n and change; cases waiting."""
    p = await page(request, "dashboards")
    team = p.team()
    filters = {"team": team} if team else {}
    _, days, _, _, end = _range(p)
    cards = []
    for survey in p.state.catalog:
        if survey.audience != "customer":
            continue
        query = _query(p, survey.id, filters)
        result = await trends.trend(query)
        points = result["groups"][0]["points"] if result["groups"] else []
        change = await trends.compare(
            survey,
            survey.question.id,
            trends.selection(query),
            (end - timedelta(days=2 * days - 1), end - timedelta(days=days)),
            (end - timedelta(days=days - 1), end),
        )
        latest = points[-1] if points else None
        cards.append(
            {
                "survey": survey,
                "title": localized(survey.title, p.locale, p.state.settings.company_name),
                "latest": latest,
                "change": change[0] if change else None,
                "figure": figure(
                    _trend_figure(p, survey, [{"name": p.t(METRIC_LABELS[survey.kind]), "points": points}])
                ),
                "digits": 2 if survey.kind == "ces" else 1,
            }
        )
    ids = await _team_ids(p, team)
    since = datetime.now(UTC) - timedelta(days=days)
    invitations = Invitation.filter(sent_at__gte=since, contact_id__not_isnull=True)
    cases = FollowUpCase.filter(status__in=followups.OPEN_STATUSES)
    if ids is not None:
        invitations = invitations.filter(touchpoint__team_id__in=ids)
        cases = cases.filter(team_id__in=ids)
    sent = await invitations.count()
    answered = await invitations.filter(status="answered").count()
    waiting = await cases.count()
    overdue = await cases.filter(due_at__lt=datetime.now(UTC)).count()
    teams = await _team_choices(p)
    return p.render(
        "dashboard/overview.html",
        {
            "cards": cards,
            "team": team,
            "teams": teams,
            "days": days,
            "sent": sent,
            "answered": answered,
            "rate": answered / sent if sent else None,
            "waiting": waiting,
            "overdue": overdue,
            "params": _params(p),
        },
    )


def _params(p: Page) -> dict:
    window, _, interval, start, end = _range(p)
    return {"window": window, "interval": interval, "from": start.isoformat(), "to": end.isoformat()}


async def _team_choices(p: Page) -> list[Team]:
    query = Team.all().order_by("name")
    if p.slugs is not None:
        query = query.filter(slug__in=p.slugs)
    return await query


async def breakdown(request: Request) -> Response:
    """One survey by touchpoint, team, channel, stage, days since the sale or a segment: a sortable table."""
    p = await page(request, "dashboards")
    survey_id = request.query_params.get("survey", "nps")
    survey = p.state.catalog.get(survey_id)
    if survey is None or survey.audience != "customer":
        raise BadRequest("Unknown survey.")
    by = request.query_params.get("by", "touchpoint")
    known = [d for d in rollups.dimensions(p.state.settings.segment_attributes) if d != "all"]
    if by not in known:
        raise BadRequest("Unknown dimension.")
    team = p.team()
    # by team: every team (a manager's are filtered below); otherwise the chosen team broken down
    query = _query(p, survey.id, {"team": team} if team and by != "team" else {}, by=by)
    result = await trends.trend(query)
    digits = 2 if survey.kind == "ces" else 1
    groups = [
        group
        for group in result["groups"]
        if not (by == "team" and p.slugs is not None and group["key"].get(by) not in p.slugs)
    ]  # a manager sees only their teams
    y_range = charts.shared_range([group["points"] for group in groups], SCALES[survey.kind])  # rows compare
    rows = []
    for group in groups:
        latest = group["points"][-1] if group["points"] else None
        rows.append(
            {
                "value": group["key"].get(by),
                "latest": latest,
                "spark": figure(charts.sparkline(group["points"], lambda v: p.number(v, digits), y_range)),
            }
        )
    return p.render(
        "dashboard/breakdown.html",
        {
            "survey": survey,
            "surveys": [s for s in p.state.catalog if s.audience == "customer"],
            "by": by,
            "dimensions": [(d, p.t(DIMENSION_LABELS[d]) if d in DIMENSION_LABELS else d) for d in known],
            "rows": rows,
            "team": team,
            "teams": await _team_choices(p),
            "digits": digits,
            "params": _params(p),
            "title": localized(survey.title, p.locale, p.state.settings.company_name),
        },
    )


async def loyalty(request: Request) -> Response:
    """Satisfied is not loyal: the four groups, and the customers who are satisfied but would not recommend."""
    p = await page(request, "dashboards")
    data = await insights.loyalty_quadrant_cached(
        p.state.catalog, p.state.settings.database_url, 200, await access.team_ids(p.user)
    )
    labels = {k: p.t(v) for k, v in QUADRANT_LABELS.items()}
    return p.render(
        "dashboard/loyalty.html",
        {
            "counts": data["counts"],
            "shares": data["shares"],
            "labels": labels,
            "people": data["satisfied_not_loyal"],
            "figure": figure(charts.quadrant(data["counts"], labels, p.count)),
            "total": data["contacts"],
        },
    )


async def after_sale(request: Request) -> Response:
    """Where loyalty erodes after the sale: the metric by days since the sale and by stage."""
    p = await page(request, "dashboards")
    survey = p.state.catalog.get(request.query_params.get("survey", "nps"))
    if survey is None or survey.audience != "customer":
        raise BadRequest("Unknown survey.")
    team = p.team()
    _, _, _, start, end = _range(p)
    start = min(start, end - timedelta(days=365))
    digits = 2 if survey.kind == "ces" else 1
    figures = {}
    for dimension in ("lifecycle", "stage"):
        chosen = (
            trends.Selection(f"team|{dimension}", prefix=f"{team}|", group=dimension)
            if team
            else trends.Selection(dimension, group=dimension)
        )
        series = await trends.daily(survey.id, survey.question.id, chosen, start, end)
        names = [n for n, _, _ in rollups.LIFECYCLE] if dimension == "lifecycle" else sorted(series)
        estimates = [metrics.estimate(survey.kind, metrics.add(*series.get(n, {}).values())) for n in names]
        figures[dimension] = figure(
            charts.bars(
                [p.t("%(range)s days", range=n) if dimension == "lifecycle" else n for n in names],
                [e.value for e in estimates],
                [e.ci_low for e in estimates],
                [e.ci_high for e in estimates],
                [e.n for e in estimates],
                value_label=p.t(METRIC_LABELS[survey.kind]),
                n_label=p.t("n ="),
                few_label=p.t(FEW_ANSWERS),
                fmt=lambda v: p.number(v, digits),
                fmt_n=p.count,
            )
        )
    return p.render(
        "dashboard/after_sale.html",
        {
            "survey": survey,
            "surveys": [s for s in p.state.catalog if s.audience == "customer"],
            "figures": figures,
            "team": team,
            "teams": await _team_choices(p),
            "start": start,
            "end": end,
            "title": localized(survey.title, p.locale, p.state.settings.company_name),
        },
    )


async def account(request: Request) -> Response:
    """Your profile: language, and signing out everywhere."""
    user = await signed_in(request)
    p = Page(request, user, user_locale(request, user), await access.team_slugs(user))
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        locale = str(form.get("locale") or "")
        if locale not in i18n.LANGUAGE_NAMES:
            raise BadRequest("Choose one of the offered languages.")
        await User.filter(id=user.id).update(locale=locale)
        return RedirectResponse("/account?lang=" + locale, status_code=303)
    return p.render("dashboard/account.html", {"teams": await access.top_teams(user)})


async def root(request: Request) -> Response:
    """Signed in: your dashboard; otherwise the front page."""
    from pulse.web import system
    from pulse.web.signin import current_user, home_for

    user = await current_user(request)
    if user is not None:
        return RedirectResponse(home_for(user), status_code=303)
    return await system.home(request)


ROUTES = [
    Route("/dashboard", overview, name="dashboard"),
    Route("/dashboard/breakdown", breakdown, name="dashboard_breakdown"),
    Route("/dashboard/loyalty", loyalty, name="dashboard_loyalty"),
    Route("/dashboard/after-sale", after_sale, name="dashboard_after_sale"),
    Route("/account", account, methods=["GET", "POST"], name="account"),
]
