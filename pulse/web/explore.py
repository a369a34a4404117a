"""The responses explorer: every customer answer with its comment, filtered, a page at a time, and as CSV.

The page and the CSV read the same SQL conditions (`Selection.where`), so the download is exactly the rows the
filters show. Employee pulses never appear: their answers are in pulse_answer, and the customer surveys are the
only ones asked for here, as in the export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pulse import audit, db, export, fields
from pulse.catalog import localized
from pulse.errors import BadRequest
from pulse.i18n import LOCALES, N_
from pulse.models import Team
from pulse.web.cases import filtered, paging, refused_filter, search_text, team_choices, team_filter
from pulse.web.dashboard import Page, page

ANSWERS_PER_PAGE = 25
COMMENT_CHOICES = {"": N_("With or without a comment"), "1": N_("With a comment"), "0": N_("Without a comment")}


@dataclass(frozen=True)
class Selection:
    """The explorer's filters, as the URL gave them and as SQL conditions on `response r`."""

    survey: str
    team: str
    since: date | None
    until: date | None
    low: int | None
    high: int | None
    comment: str
    language: str
    q: str
    conditions: tuple[tuple[str, tuple], ...]  # SQL on `response r`, each with its parameters

    @property
    def where(self) -> str:
        return " AND ".join(clause for clause, _ in self.conditions)

    @property
    def filtered(self) -> bool:
        """Whether any filter narrows the answers (else an empty list means there are none at all)."""
        values = (self.survey, self.team, self.since, self.until, self.comment, self.language, self.q)
        return any(values) or self.low is not None or self.high is not None

    @property
    def params(self) -> list:
        return [value for _, values in self.conditions for value in values]


def like_pattern(text: str) -> str:
    """`text` as a case-insensitive LIKE pattern that matches it anywhere, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def selection(p: Page) -> Selection:
    """The filters of the URL, checked; each bad value is a 400 that names its field."""
    params = p.request.query_params
    customer = [s for s in p.state.catalog if s.audience == "customer"]
    survey = params.get("survey") or ""
    if survey and survey not in {s.id for s in customer}:
        raise BadRequest(p.t("Choose a survey from the list."))
    team, ids = await team_filter(p)
    since = fields.parse_date(params["from"], "from") if params.get("from") else None
    until = fields.parse_date(params["to"], "to") if params.get("to") else None
    if since and until and since > until:
        raise BadRequest(p.t("The first day (from) must not be after the last day (to)."))
    low = fields.whole_number(params["min"], "min", 0, 10) if params.get("min") else None
    high = fields.whole_number(params["max"], "max", 0, 10) if params.get("max") else None
    if low is not None and high is not None and low > high:
        raise BadRequest(p.t("The lowest score (min) must not be above the highest (max)."))
    comment = params.get("comment") or ""
    if comment not in COMMENT_CHOICES:
        raise BadRequest(p.t("Choose whether the answer has a comment from the list."))
    language = params.get("language") or ""
    if language and not fields.LOCALE_TAG.match(language):
        raise BadRequest(p.t("Choose a language from the list."))
    q = search_text(p)
    conditions: list[tuple[str, tuple]] = [
        ("r.confirmed = ? AND r.discarded = ?", (True, False)),
        (f"r.survey_id IN ({db.marks(len(customer))})", tuple(s.id for s in customer)),
    ]
    for clause, value in (
        ("r.survey_id = ?", survey or None),
        ("r.day >= ?", since),
        ("r.day <= ?", until),
        ("r.score >= ?", low),
        ("r.score <= ?", high),
        ("r.locale = ?", language or None),
        ("LOWER(r.comment) LIKE ? ESCAPE '\\'", like_pattern(q) if q else None),
    ):
        if value is not None:
            conditions.append((clause, (value,)))
    if comment:
        conditions.append(("r.comment <> ''" if comment == "1" else "r.comment = ''", ()))
    if ids is not None:  # the team chosen (with its sub-teams), or every team a manager may see
        conditions.append((f"r.team_id IN ({db.marks(len(ids))})" if ids else "1 = 0", tuple(ids)))
    return Selection(survey, team, since, until, low, high, comment, language, q, tuple(conditions))


async def responses(request: Request) -> Response:
    """Answers with their comments, newest first, filtered by survey, team, dates, score, comment, language, text."""
    return await filtered(request, "dashboards", _responses)


async def _responses(p: Page) -> Response:
    request = p.request
    chosen = await selection(p)
    where = chosen.where  # fixed clauses: every value the URL gave is a parameter
    [(total,)] = await db.fetch(f"SELECT COUNT(*) FROM response r WHERE {where}", chosen.params)  # noqa: S608
    pages = paging(request, total, ANSWERS_PER_PAGE)
    columns = "r.id, r.survey_id, r.score, r.comment, r.locale, r.answered_at, r.day, r.touchpoint_type, r.team_id"
    order = f"ORDER BY r.day DESC, r.id DESC LIMIT {pages.size} OFFSET {pages.offset}"
    found = await db.fetch(f"SELECT {columns} FROM response r WHERE {where} {order}", chosen.params)  # noqa: S608
    teams = dict(await Team.filter(id__in={row[8] for row in found if row[8]}).values_list("id", "name"))
    catalog = p.state.catalog
    titles = {s.id: localized(s.title, p.locale, p.state.settings.company_name) for s in catalog}
    rows = [
        {
            "id": row[0],
            "survey": titles.get(row[1], row[1]),
            "score": row[2],
            "comment": row[3],
            "language": row[4],
            "answered_at": db.as_datetime(row[5]),
            "day": row[6] if isinstance(row[6], date) else date.fromisoformat(row[6]),
            "touchpoint": p.label("touchpoint", row[7]),
            "team": teams.get(row[8], ""),
        }
        for row in found
    ]
    query = request.url.query
    return p.render(
        "dashboard/responses.html",
        {
            "rows": rows,
            "chosen": chosen,
            "paging": pages,
            "surveys": [(s.id, titles[s.id]) for s in catalog if s.audience == "customer"],
            "teams": await team_choices(p),
            "team": chosen.team,
            "languages": LOCALES,
            "comment_choices": COMMENT_CHOICES,
            "csv_url": "/responses.csv" + ("?" + query if query else ""),
            "filtered": chosen.filtered,
        },
    )


async def responses_csv(request: Request) -> Response:
    """The explorer's rows (all pages) as CSV: the export's columns, streaming and formula-safe cells."""
    p = await page(request, "dashboards")
    try:
        chosen = await selection(p)
    except BadRequest as refused:
        return refused_filter(p, refused)
    filename = f"pulse-responses-{p.today().isoformat()}.csv"
    filters = {k: v for k, v in request.query_params.items() if k != "bom"}
    await audit.record(
        "export.responses",
        actor=p.user.email,
        target="responses",
        source=audit.source_of(request),
        details={"filters": filters},
    )
    return StreamingResponse(
        export.csv_chunks(
            export.Options(bom=request.query_params.get("bom") == "1"),
            p.state.catalog,
            p.state.settings.segment_attributes,
            conditions=chosen.conditions,
        ),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
    )


ROUTES = [
    Route("/responses", responses, name="responses"),
    Route("/responses.csv", responses_csv, name="responses_csv"),
]
