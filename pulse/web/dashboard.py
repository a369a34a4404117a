"""Pages for managers, analysts and admins: overview, breakdowns, loyalty, after the sale, contacts, cases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from pulse import access, audit, charts, db, fields, followups, i18n, insights, labels, metrics, rollups, trends
from pulse.catalog import localized
from pulse.errors import BadRequest, Forbidden, NotFound
from pulse.i18n import N_
from pulse.models import FollowUpCase, Team, User
from pulse.models import Response as Answer
from pulse.web import filters
from pulse.web.auth import CSRF_FIELD, check_csrf, csrf_token, set_csrf_cookie
from pulse.web.security import CHART_CSP
from pulse.web.signin import remember_locale, signed_in, user_locale
from pulse.web.templating import render, with_query

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
NO_ANSWERS_ADMIN = N_(
    "No answers yet. Send touchpoint events with POST /api/v1/touchpoints and answers will appear here."
)
NO_ANSWERS = N_("No customer has answered a survey yet.")
DEFAULT_DAYS = 26 * 7  # the period a chart shows when no dates are chosen
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

    def ngettext(self, singular: str, plural: str, n: int, **variables: object) -> str:
        """The plural form for `n`, with `num` the number as the locale writes it."""
        return i18n.translate_plural(self.locale, singular, plural, n, **{"num": self.count(n), **variables})

    def label(self, kind: str, code: str | None) -> str:
        return labels.label(kind, code, self.locale)

    async def group_names(self, by: str):
        """How the groups of a breakdown by `by` are named for the reader: labels, team names, day ranges;
        a segment's values are the customer's own data and stay as they are."""
        if by == "team":
            teams = dict(await Team.all().values_list("slug", "name"))
            return lambda slug: teams.get(slug, slug)
        if by == "lifecycle":
            return lambda bucket: _days_since(self, bucket)
        kind = {"touchpoint": "touchpoint", "stage": "stage", "channel": "channel"}.get(by)
        return (lambda code: self.label(kind, code)) if kind else (lambda value: value)

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
            raise Forbidden(N_("This team is not one of yours."))
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
    await remember_locale(request, user)
    found = Page(request, user, user_locale(request, user), await access.team_slugs(user))
    if found.slugs == []:  # scoped to no team: nothing, rather than everything
        raise NotAssigned(found)
    if found.slugs is not None:
        top = await access.top_teams(user)
        found.top = top[0].slug if top else None
    return found


def figure(value: dict) -> Markup:
    """Figure JSON for a <script type="application/json"> block: safe against </script> and friends.

    Only figures made by pulse.charts pass: they carry the reader's locale, and a figure without one would show
    English month names and decimal points to everyone.
    """
    if not value.get("config", {}).get("locales"):
        raise ValueError("A figure without the reader's locale: build it with pulse.charts.")
    text = json.dumps(value, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))  # noqa: S704


def _customer_surveys(p: Page) -> list:
    return [s for s in p.state.catalog if s.audience == "customer"]


def _title(p: Page, survey) -> str:
    return localized(survey.title, p.locale, p.state.settings.company_name)


def _query(p: Page, survey_id: str, chosen: filters.Filters, team: str | None, by: str | None = None):
    start, end = chosen.period(p.today(), DEFAULT_DAYS)
    params = {"survey": survey_id, "window": chosen.window, "interval": chosen.interval}
    params |= {"from": start.isoformat(), "to": end.isoformat(), **({"team": team} if team else {})}
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
        locale=p.locale,
    )


async def _team_ids(p: Page, team: str | None) -> list[int] | None:
    if team is None:
        return None if p.slugs is None else list(await access.team_ids(p.user) or [])
    found = await Team.get_or_none(slug=team)
    if found is None:
        raise NotFound(N_("No such team."))
    from pulse.teams import subtree_ids

    return await subtree_ids(found.id)


async def _filters(p: Page, points: bool = False) -> tuple[str | None, filters.Filters]:
    """The team (checked against the user's scope: another's team is a 403) and the other filters of the URL;
    a team that does not exist is told beside its field."""
    team = p.team()
    chosen = filters.read(p.request.query_params, p.t, p.ngettext, p.today(), points)
    if team is not None and p.slugs is None and not await Team.exists(slug=team):
        chosen.errors["team"] = p.t("No team has this name.")
    return team, chosen


async def _form(p: Page, chosen: filters.Filters, team: str | None, shown: tuple, since, until, **extra) -> dict:
    """What the filter form (dashboard/_filters.html) needs."""
    return {
        "form": chosen.shown(since, until),
        "errors": chosen.errors,
        "shown": shown,
        "team": team,
        "teams": await _team_choices(p),
        "date_min": fields.EARLIEST.isoformat(),
        "date_max": p.today().isoformat(),
        **extra,
    }


async def _answer_counts(p: Page, team: str | None, start: date, end: date) -> dict[str, int]:
    """How many answers each customer survey has for the team (or everyone) between two days."""
    chosen = trends.Selection("team", value=team) if team else trends.Selection("all", value="all")
    counts = {}
    for survey in _customer_surveys(p):
        series = await trends.daily(survey.id, survey.question.id, chosen, start, end)
        counts[survey.id] = sum(sum(hist) for days in series.values() for hist in days.values())
    return counts


def _survey(p: Page, chosen: filters.Filters, counts: dict[str, int]):
    """The survey of the URL; by default the one the team (or everyone) answered most in the period."""
    raw = p.request.query_params.get("survey")
    surveys = _customer_surveys(p)
    if raw:
        found = p.state.catalog.get(raw)
        if found is not None and found.audience == "customer":
            return found
        chosen.errors["survey"] = p.t("Choose one of the offered surveys.")
    if not surveys:
        raise NotFound(N_("No customer survey is configured."))
    return max(surveys, key=lambda s: (counts.get(s.id, 0), -surveys.index(s)))


async def _anyone_answered(p: Page) -> bool:
    ids = [s.id for s in _customer_surveys(p)]
    return await Answer.filter(survey_id__in=ids, confirmed=True, discarded=False).exists()


async def _nothing_at_all(p: Page) -> str:
    """No customer answer anywhere yet: the API hint is for whoever integrates Pulse, an admin."""
    return p.t(NO_ANSWERS_ADMIN) if p.user.role == "admin" else p.t(NO_ANSWERS)


async def _no_answers(p: Page, survey, counts: dict[str, int], team: str | None) -> dict | None:
    """The truth when the chosen survey has no answers here: which surveys do, with links; or that none do."""
    if counts.get(survey.id):
        return None
    title = _title(p, survey)
    others = [s for s in _customer_surveys(p) if counts.get(s.id)]
    if others:
        return {
            "text": p.t("This team has no answers to %(survey)s in this period.", survey=title)
            if team
            else p.t("No one has answered %(survey)s in this period.", survey=title),
            "lead": p.t("It has answers to:") if team else p.t("There are answers to:"),
            "links": [(_title(p, s), with_query(p.request, p.request.url.path, survey=s.id)) for s in others],
        }
    if not await _anyone_answered(p):
        return {"text": await _nothing_at_all(p)}
    if team:
        return {"text": p.t("This team has no answers in this period.")}
    return {"text": p.t("No one has answered in this period.")}


async def _sent_and_answered(since: datetime, team_ids: list[int] | None) -> tuple[int, int]:
    """Survey e-mails to customers sent since `since` (of the teams' touchpoints, when given), and how many of them
    are answered: one pass over the window by the sent_at index. Counted apart, the answered ones went by the
    (status, send_at) index through every answered invitation there ever was (about 0.3 s at 1M)."""
    params: list = [db.bound_time(since)]
    join = teams = ""
    if team_ids is not None:
        if not team_ids:
            return 0, 0
        join = " JOIN touchpoint t ON t.id = i.touchpoint_id"
        teams = f" AND t.team_id IN ({db.marks(len(team_ids))})"
        params += team_ids
    answered_count = "COALESCE(SUM(CASE WHEN i.status = 'answered' THEN 1 ELSE 0 END), 0)"
    where = f"i.sent_at >= ? AND i.contact_id IS NOT NULL{teams}"
    sql = f"SELECT COUNT(*), {answered_count} FROM invitation i{join} WHERE {where}"  # noqa: S608 - constant text
    [(sent, answered)] = await db.fetch(sql, params)
    return sent, answered


async def overview(request: Request) -> Response:
    """Loyalty, satisfaction and effort at a glance, each with its band, n and change; cases waiting."""
    p = await page(request, "dashboards")
    team, chosen = await _filters(p, points=True)
    start, end = chosen.period(p.today(), DEFAULT_DAYS)
    shown = ("team", "window", "interval", "from", "to")
    form = await _form(p, chosen, team, shown, start, end)
    if chosen.errors:
        return p.render("dashboard/overview.html", {**form, "cards": []}, status_code=400)
    days = chosen.days
    cards = []
    anyone: bool | None = None
    for survey in _customer_surveys(p):
        query = _query(p, survey.id, chosen, team)
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
        empty = None
        if not (latest and latest["n"]):
            if any(point["n"] for point in points):
                empty = p.ngettext("No answers in the last %(num)s day.", "No answers in the last %(num)s days.", days)
            else:
                anyone = await _anyone_answered(p) if anyone is None else anyone
                if not anyone:
                    empty = await _nothing_at_all(p)
                elif team:
                    empty = p.t("This team has no answers to this survey in this period.")
                else:
                    empty = p.t("No one has answered this survey in this period.")
        cards.append(
            {
                "survey": survey,
                "title": _title(p, survey),
                "latest": latest,
                "empty": empty,
                "drawn": any(point["n"] for point in points),
                "change": change[0] if change else None,
                "figure": figure(
                    _trend_figure(p, survey, [{"name": p.t(METRIC_LABELS[survey.kind]), "points": points}])
                ),
                "digits": 2 if survey.kind == "ces" else 1,
            }
        )
    ids = await _team_ids(p, team)
    sent, answered = await _sent_and_answered(datetime.now(UTC) - timedelta(days=days), ids)
    cases = FollowUpCase.filter(status__in=followups.OPEN_STATUSES)
    if ids is not None:
        cases = cases.filter(team_id__in=ids)
    waiting = await cases.count()
    overdue = await cases.filter(due_at__lt=datetime.now(UTC)).count()
    return p.render(
        "dashboard/overview.html",
        {
            **form,
            "cards": cards,
            "days": days,
            "sent": sent,
            "answered": answered,
            "rate": answered / sent if sent else None,
            "waiting": waiting,
            "overdue": overdue,
        },
    )


async def _team_choices(p: Page) -> list[Team]:
    query = Team.all().order_by("name")
    if p.slugs is not None:
        query = query.filter(slug__in=p.slugs)
    return await query


async def breakdown(request: Request) -> Response:
    """One survey by touchpoint, team, channel, stage, days since the sale or a segment: a sortable table."""
    p = await page(request, "dashboards")
    team, chosen = await _filters(p, points=True)
    start, end = chosen.period(p.today(), DEFAULT_DAYS)
    counts = await _answer_counts(p, team, start - timedelta(days=chosen.days - 1), end) if not chosen.errors else {}
    survey = _survey(p, chosen, counts)
    by = request.query_params.get("by") or "touchpoint"
    known = [d for d in rollups.dimensions(p.state.settings.segment_attributes) if d != "all"]
    if by not in known:
        chosen.errors["by"] = p.t("Choose one of the offered groupings.")
    form = await _form(
        p,
        chosen,
        team,
        ("survey", "by", "team", "window", "interval", "from", "to"),
        start,
        end,
        survey=survey,
        surveys=_customer_surveys(p),
        by=by,
        dimensions=[(d, p.t(DIMENSION_LABELS[d]) if d in DIMENSION_LABELS else p.label("segment", d)) for d in known],
        title=_title(p, survey),
    )
    if chosen.errors:
        return p.render("dashboard/breakdown.html", {**form, "rows": [], "notice": None}, status_code=400)
    digits = 2 if survey.kind == "ces" else 1
    rows = []
    notice = await _no_answers(p, survey, counts, team)
    if notice is None:
        # by team: every team (a manager's are filtered below); otherwise the chosen team broken down
        result = await trends.trend(_query(p, survey.id, chosen, team if by != "team" else None, by=by))
        groups = [
            group
            for group in result["groups"]
            if not (by == "team" and p.slugs is not None and group["key"].get(by) not in p.slugs)
        ]  # a manager sees only their teams
        y_range = charts.shared_range([group["points"] for group in groups], SCALES[survey.kind])  # rows compare
        names = await p.group_names(by)
        for group in groups:
            latest = group["points"][-1] if group["points"] else None
            rows.append(
                {
                    "value": names(group["key"].get(by)),
                    "latest": latest,
                    "spark": figure(
                        charts.sparkline(
                            group["points"], lambda v: p.number(v, digits), locale=p.locale, y_range=y_range
                        )
                    ),
                }
            )
        if not rows:
            notice = {"text": p.t("No answers in this period fall into these groups.")}
    return p.render("dashboard/breakdown.html", {**form, "rows": rows, "digits": digits, "notice": notice})


LOYALTY_PAGE_SIZE = 50


def _page_number(p: Page) -> int:
    raw = p.request.query_params.get("page") or "1"
    if not fields.WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= 1_000_000:
        raise BadRequest(p.t("The page must be a whole number from 1."))
    return int(raw)


async def _loyalty_data(p: Page, team: str | None, chosen: filters.Filters) -> dict:
    """Without a period, the counts of `loyalty_standing` for the team's scope (pages are read one by one);
    with one, the period's quadrant with its whole list, remembered until an answer lands."""
    if chosen.since is None and chosen.until is None:
        found = await Team.get_or_none(slug=team) if team else None
        if team and found is None:
            raise NotFound(N_("No such team."))
        return await insights.standing(p.state.catalog, found.id if found else 0)
    ids = await _team_ids(p, team) if team else None
    data = await insights.loyalty_quadrant_cached(
        p.state.catalog,
        p.state.settings.database_url,
        set(ids) if ids is not None else None,
        chosen.since,
        chosen.until,
    )
    return {**data, "listed": len(data["satisfied_not_loyal"])}


async def loyalty(request: Request) -> Response:
    """Satisfied is not loyal: the four groups, and the customers who are satisfied but would not recommend."""
    p = await page(request, "dashboards")
    team, chosen = await _filters(p)
    number = _page_number(p)
    labels = {k: p.t(v) for k, v in QUADRANT_LABELS.items()}
    form = await _form(p, chosen, team, ("team", "from", "to"), chosen.since, chosen.until, labels=labels)
    if chosen.errors:
        return p.render("dashboard/loyalty.html", {**form, "people": [], "total": 0}, status_code=400)
    data = await _loyalty_data(p, team, chosen)
    pages = max(1, -(-data["listed"] // LOYALTY_PAGE_SIZE))
    number = min(number, pages)
    first = (number - 1) * LOYALTY_PAGE_SIZE
    return p.render(
        "dashboard/loyalty.html",
        {
            **form,
            "counts": data["counts"],
            "shares": data["shares"],
            "people": await insights.describe(await insights.standing_page(data, first, LOYALTY_PAGE_SIZE)),
            "team_names": dict(await Team.all().values_list("slug", "name")),  # the list keeps slugs (CSV, API)
            "listed": data["listed"],
            "paging": {
                "number": number,
                "pages": pages,
                "previous": with_query(request, request.url.path, page=number - 1 if number > 2 else None)
                if number > 1
                else None,
                "next": with_query(request, request.url.path, page=number + 1) if number < pages else None,
            },
            "download": with_query(request, "/dashboard/loyalty.csv", keep=("team", "from", "to")),
            "figure": figure(charts.quadrant(data["counts"], labels, p.count, locale=p.locale)),
            "total": data["contacts"],
        },
    )


async def loyalty_csv(request: Request) -> Response:
    """Every customer who is satisfied but not loyal, for the team and period chosen, as CSV."""
    p = await page(request, "dashboards")
    team, chosen = await _filters(p)
    if chosen.errors:
        raise BadRequest(" ".join(chosen.errors.values()))
    data = await _loyalty_data(p, team, chosen)
    name = "satisfied-but-not-loyal" + (f"-{team}" if team else "") + ".csv"
    await audit.record(
        "export.loyalty",
        actor=p.user.email,
        target="loyalty list",
        source=audit.source_of(request),
        details={"filters": dict(request.query_params), "rows": data["listed"]},
    )
    return StreamingResponse(
        insights.csv_chunks(data),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


async def survey_period_form(p: Page, default_days: int) -> tuple:
    """The filters of a page about one survey, a team and a period (after the sale, themes): the team, the filters
    read, the survey shown, its answer counts per survey, and the form's context."""
    team, chosen = await _filters(p)
    start, end = chosen.period(p.today(), default_days)
    counts = await _answer_counts(p, team, start, end) if not chosen.errors else {}
    survey = _survey(p, chosen, counts)
    form = await _form(
        p,
        chosen,
        team,
        ("survey", "team", "from", "to"),
        start,
        end,
        survey=survey,
        surveys=_customer_surveys(p),
        title=_title(p, survey),
        start=start,
        end=end,
    )
    return team, chosen, survey, counts, form


async def after_sale(request: Request) -> Response:
    """Where loyalty erodes after the sale: the metric by days since the sale and by stage."""
    p = await page(request, "dashboards")
    team, chosen, survey, counts, form = await survey_period_form(p, 365)
    start, end = form["start"], form["end"]
    if chosen.errors:
        return p.render("dashboard/after_sale.html", {**form, "figures": {}, "notice": None}, status_code=400)
    notice = await _no_answers(p, survey, counts, team)
    digits = 2 if survey.kind == "ces" else 1
    figures = {}
    for dimension in ("lifecycle", "stage") if notice is None else ():
        selected = (
            trends.Selection(f"team|{dimension}", prefix=f"{team}|", group=dimension)
            if team
            else trends.Selection(dimension, group=dimension)
        )
        series = await trends.daily(survey.id, survey.question.id, selected, start, end)
        names = [n for n, _, _ in rollups.LIFECYCLE] if dimension == "lifecycle" else sorted(series)
        estimates = [metrics.estimate(survey.kind, metrics.add(*series.get(n, {}).values())) for n in names]
        figures[dimension] = figure(
            charts.bars(
                [_days_since(p, n) if dimension == "lifecycle" else p.label("stage", n) for n in names],
                [e.value for e in estimates],
                [e.ci_low for e in estimates],
                [e.ci_high for e in estimates],
                [e.n for e in estimates],
                value_label=p.t(METRIC_LABELS[survey.kind]),
                n_label=p.t("n ="),
                few_label=p.t(FEW_ANSWERS),
                fmt=lambda v: p.number(v, digits),
                fmt_n=p.count,
                locale=p.locale,
            )
        )
    return p.render("dashboard/after_sale.html", {**form, "figures": figures, "notice": notice})


def _days_since(p: Page, bucket: str) -> str:
    """A bucket of rollups.LIFECYCLE in words: '0–30 days' (the plural of the upper bound), 'over 365 days'."""
    _, low, high = next(one for one in rollups.LIFECYCLE if one[0] == bucket)
    if high is None:
        return p.ngettext("over %(num)s day", "over %(num)s days", low - 1)
    return p.ngettext("%(low)s–%(num)s day", "%(low)s–%(num)s days", high, low=p.count(low))


async def account(request: Request) -> Response:
    """Your profile: language, and signing out everywhere."""
    user = await signed_in(request)
    await remember_locale(request, user)
    p = Page(request, user, user_locale(request, user), await access.team_slugs(user))
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        locale = str(form.get("locale") or "")
        if locale not in i18n.LANGUAGE_NAMES:
            raise BadRequest(N_("Choose one of the offered languages."))
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
    Route("/dashboard/loyalty.csv", loyalty_csv, name="dashboard_loyalty_csv"),
    Route("/dashboard/after-sale", after_sale, name="dashboard_after_sale"),
    Route("/account", account, methods=["GET", "POST"], name="account"),
]
