"""Working the cases and the customers: the case inbox, one case, the contacts list and one contact."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.expressions import Q, RawSQL, Subquery
from tortoise.functions import Count

from pulse import access, audit, case_notes, fields, followups, labels, recovery, timeline
from pulse.catalog import localized
from pulse.errors import BadRequest, NotFound, PulseError
from pulse.models import CaseNote, Contact, FollowUpCase, Team, Touchpoint, User, UserTeam
from pulse.models import Response as Answer
from pulse.teams import subtree_ids
from pulse.web.auth import CSRF_FIELD, check_csrf
from pulse.web.dashboard import Page, page

STATUS_LABELS = labels.LABELS["case_status"]  # in workflow order, which every list and select keeps
STATUS_CHOICES = {"active": followups.OPEN_STATUSES, "any": followups.STATUSES} | {s: (s,) for s in followups.STATUSES}
SORTS = {  # URL value -> order of the rows; "-" in front reverses
    "due": ("due_at", "id"),
    "created": ("created_at", "id"),
    "score": ("score", "due_at", "id"),
    "team": ("team__name", "due_at", "id"),
    "status": ("status_rank", "due_at", "id"),
}
CASES_PER_PAGE = 25
CONTACTS_PER_PAGE = 50
SEARCH_LENGTH = 100


@dataclass(frozen=True)
class Paging:
    """Which slice of a list one page shows, and the links to its neighbours (every filter kept)."""

    number: int
    pages: int
    total: int
    size: int
    previous: str | None
    next: str | None

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def paging(request: Request, total: int, size: int) -> Paging:
    """The page asked for by `?page=` (past the end: the last page), or a 400 for a page that is no number."""
    raw = request.query_params.get("page") or "1"
    pages = max(1, math.ceil(total / size))
    number = min(fields.whole_number(raw, "page", 1, fields.LARGEST_ID), pages)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def link(n: int) -> str:
        return request.url.path + "?" + urlencode([*kept, ("page", str(n))])

    return Paging(
        number,
        pages,
        total,
        size,
        link(number - 1) if number > 1 else None,
        link(number + 1) if number < pages else None,
    )


def search_text(p: Page) -> str:
    """The `q` search box: trimmed, at most SEARCH_LENGTH characters, storable."""
    q = (p.request.query_params.get("q") or "").strip()[:SEARCH_LENGTH]
    if fields.unstorable(q):
        raise BadRequest(p.t("The search must not contain control characters."))
    return q


async def team_filter(p: Page) -> tuple[str, list[int] | None]:
    """The `team` filter (a slug of one of the user's teams, or empty: all of them) and the ids it covers."""
    slug = p.request.query_params.get("team") or ""
    if not slug:
        ids = await access.team_ids(p.user)
        return "", None if ids is None else sorted(ids)
    if len(slug) > 64 or fields.unstorable(slug) or (p.slugs is not None and slug not in p.slugs):
        raise BadRequest(p.t("Choose one of your teams."))
    team = await Team.get_or_none(slug=slug)
    if team is None:
        raise BadRequest(p.t("Choose one of your teams."))
    return slug, await subtree_ids(team.id)


async def team_choices(p: Page) -> list[Team]:
    query = Team.all().order_by("name")
    return await (query if p.slugs is None else query.filter(slug__in=p.slugs))


async def contacts(request: Request) -> Response:
    """Every customer the user may see, a page at a time, with their last score, team and open cases."""
    return await filtered(request, "contacts", _contacts)


async def _contacts(p: Page) -> Response:
    request = p.request
    q = search_text(p)
    query = Contact.all()
    if q:
        query = query.filter(Q(external_id__icontains=q) | Q(email__icontains=q) | Q(name__icontains=q))
    ids = await access.team_ids(p.user)
    if ids is not None:
        query = query.filter(timeline.in_teams(ids))
    pages = paging(request, await query.count(), CONTACTS_PER_PAGE)
    found = await query.order_by("name", "external_id").offset(pages.offset).limit(pages.size)
    rows = await contact_rows(p, found, ids)
    return p.render("dashboard/contacts.html", {"q": q, "rows": rows, "paging": pages})


async def contact_rows(p: Page, found: list[Contact], ids: set[int] | None) -> list[dict]:
    """Last score (with its survey), last team and open cases for a page of contacts: three queries, not 3 × n."""
    contact_ids = [c.id for c in found]
    customer = [s.id for s in p.state.catalog if s.audience == "customer"]
    answers = Answer.filter(
        invitation__contact_id__in=contact_ids, confirmed=True, discarded=False, survey_id__in=customer
    )
    touchpoints = Touchpoint.filter(contact_id__in=contact_ids)
    open_cases = FollowUpCase.filter(contact_id__in=contact_ids, status__in=followups.OPEN_STATUSES)
    if ids is not None:  # a manager sees only what their teams did with the customer
        answers = answers.filter(team_id__in=ids)
        touchpoints = touchpoints.filter(team_id__in=ids)
        open_cases = open_cases.filter(team_id__in=ids)
    last: dict[int, dict] = {}
    for row in await answers.order_by("-day", "-id").values("invitation__contact_id", "survey_id", "score"):
        last.setdefault(row["invitation__contact_id"], row)
    teams: dict[int, str] = {}
    for row in await touchpoints.order_by("-occurred_at", "-id").values("contact_id", "team__name"):
        if row["team__name"]:
            teams.setdefault(row["contact_id"], row["team__name"])
    counts = dict(await open_cases.annotate(n=Count("id")).group_by("contact_id").values_list("contact_id", "n"))
    titles = {s.id: localized(s.title, p.locale, p.state.settings.company_name) for s in p.state.catalog}
    rows = []
    for person in found:
        answer = last.get(person.id)
        rows.append(
            {
                "contact": person,
                "score": answer["score"] if answer else None,
                "survey": titles.get(answer["survey_id"], answer["survey_id"]) if answer else None,
                "team": teams.get(person.id, ""),
                "open_cases": counts.get(person.id, 0),
            }
        )
    return rows


async def contact(request: Request) -> Response:
    """Everything that happened with one customer, in time order."""
    p = await page(request, "contacts")
    external_id = request.path_params["external_id"]
    storable = len(external_id) <= 200 and not fields.unstorable(external_id)
    person = await Contact.get_or_none(external_id=external_id) if storable else None
    if person is None:
        raise NotFound("No such contact.")
    ids = await access.team_ids(p.user)
    events = await timeline.events(person, p.state.catalog, ids)
    if ids is not None and not events:
        raise NotFound("No such contact.")  # nothing in a manager's teams: as if there were no such customer
    for item in events:
        item["when"] = datetime.fromisoformat(item["at"])
    # reading a person's page is reading their personal data: the audit log keeps who did
    await audit.record(
        "contact.viewed", actor=p.user.email, target=f"contact {person.external_id}", source=audit.source_of(request)
    )
    return p.render(
        "dashboard/contact.html",
        {"contact": person, "events": events, "statuses": STATUS_LABELS, "team_names": await team_names()},
    )


async def team_names() -> dict[str, str]:
    """slug -> name: a timeline keeps the slug (the API shows it), a person reads the name."""
    return dict(await Team.all().values_list("slug", "name"))


@dataclass(frozen=True)
class InboxFilters:
    status: str
    team: str
    owner: str  # "me", "anyone", "none" or a user id
    overdue: bool
    q: str
    sort: str

    def is_default(self, role: str) -> bool:
        return self == InboxFilters("active", "", default_owner(role), False, "", "due")


def default_owner(role: str) -> str:
    return "me" if role == "manager" else "anyone"


def inbox_filters(p: Page) -> InboxFilters:
    """The inbox's filters from the URL; a value no list offers is a 400 that names the filter."""
    params = p.request.query_params
    status = params.get("status") or "active"
    if status not in STATUS_CHOICES:
        raise BadRequest(p.t("Choose a status from the list."))
    show = {"mine": "me", "all": "anyone"}.get(params.get("show", ""))  # the inbox's old tabs, in shared links
    owner = params.get("owner") or show or default_owner(p.user.role)
    if owner not in ("me", "anyone", "none") and fields.identifier(owner) is None:
        raise BadRequest(p.t("Choose an owner from the list."))
    overdue = params.get("overdue") or ""
    if overdue not in ("", "1"):
        raise BadRequest(p.t("Overdue is either on (1) or off."))
    sort = params.get("sort") or "due"
    if sort.removeprefix("-") not in SORTS:
        raise BadRequest(p.t("Sort by due date, created, score, team or status."))
    return InboxFilters(status, params.get("team") or "", owner, overdue == "1", search_text(p), sort)


def refused_filter(p: Page, refused: BadRequest) -> Response:
    """A filter of the URL that makes no sense: a 400 inside the app, saying which and how to start again."""
    back = p.request.url.path.removesuffix(".csv")
    return p.render(
        "dashboard/bad_filter.html", {"message": refused.localized(p.locale), "back": back}, status_code=400
    )


async def filtered(request: Request, permission: str, build: Callable[[Page], Awaitable[Response]]) -> Response:
    """The page `build` makes from the URL's filters or, when one of them makes no sense, the bad-filter page."""
    p = await page(request, permission)
    try:
        return await build(p)
    except BadRequest as refused:
        return refused_filter(p, refused)


async def case_inbox(request: Request) -> Response:
    """Cases by status, team, owner, overdue and text, sorted and a page at a time; all in the URL."""
    return await filtered(request, "cases", _inbox)


async def _inbox(p: Page) -> Response:
    request = p.request
    chosen = inbox_filters(p)
    team, ids = await team_filter(p)
    now = datetime.now(UTC)
    query = FollowUpCase.filter(status__in=STATUS_CHOICES[chosen.status])
    if ids is not None:  # by team only: owning a case of a team one has left opens nothing
        query = query.filter(team_id__in=ids)
    owners = await User.filter(id__in=Subquery(query.values("owner_id"))).order_by("display_name", "email")
    if chosen.owner == "me":
        query = query.filter(owner_id=p.user.id)
    elif chosen.owner == "none":
        query = query.filter(owner_id=None)
    elif chosen.owner != "anyone":
        query = query.filter(owner_id=int(chosen.owner))
    if chosen.overdue:
        query = query.filter(status__in=followups.OPEN_STATUSES, due_at__lt=now)
    if chosen.q:
        q = chosen.q
        query = query.filter(
            Q(response__comment__icontains=q)
            | Q(contact__name__icontains=q)
            | Q(contact__email__icontains=q)
            | Q(contact__external_id__icontains=q)
            | Q(id__in=Subquery(CaseNote.filter(body__icontains=q).values("case_id")))
        )
    pages = paging(request, await query.count(), CASES_PER_PAGE)
    # workflow order, not the alphabet; the SQL is fixed text made of our own constants
    rank = " ".join(f"WHEN '{status}' THEN {n}" for n, status in enumerate(followups.STATUSES))
    ranked = query.annotate(status_rank=RawSQL(f"CASE status {rank} ELSE 9 END"))
    order = SORTS[chosen.sort.removeprefix("-")]
    if chosen.sort.startswith("-"):
        order = tuple("-" + name for name in order)
    found = (
        await ranked.order_by(*order).offset(pages.offset).limit(pages.size).select_related("owner", "team", "contact")
    )
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("sort", "page", "show")]
    return p.render(
        "dashboard/cases.html",
        {
            "cases": found,
            "now": now,
            "filters": chosen,
            "team": team,
            "teams": await team_choices(p),
            "owners": owners,
            "statuses": STATUS_LABELS,
            "paging": pages,
            "sort_links": {
                name: request.url.path + "?" + urlencode([*kept, ("sort", name if chosen.sort != name else "-" + name)])
                for name in SORTS
            },
            "default_view": chosen.is_default(p.user.role),
            "titles": {s.id: localized(s.title, p.locale, p.state.settings.company_name) for s in p.state.catalog},
        },
    )


async def _case(p: Page, raw: str) -> FollowUpCase:
    case_id = fields.identifier(raw)
    case = (
        await FollowUpCase.get_or_none(id=case_id).select_related("owner", "team", "contact", "response")
        if case_id is not None
        else None
    )
    if case is None:
        raise NotFound("No such case.")
    ids = await access.team_ids(p.user)
    if ids is not None and case.team_id not in ids:
        raise NotFound("No such case.")  # not "forbidden": a manager learns nothing of other teams' cases
    return case


async def owner_choices(case: FollowUpCase) -> list[User]:
    """Who may be given this case: the same rule (followups.may_own) the API and the save apply, asked only of
    those who might pass it (a manager must be given the case's team or a team above it), not of every user."""
    parents = dict(await Team.all().values_list("id", "parent_id"))
    above: list[int] = []
    team_id = case.team_id
    while team_id is not None and team_id not in above:
        above.append(team_id)
        team_id = parents.get(team_id)
    managers = set(await UserTeam.filter(team_id__in=above).values_list("user_id", flat=True))
    managers |= {owner for owner in await Team.filter(id__in=above).values_list("owner_id", flat=True) if owner}
    roles = [role for role, granted in access.PERMISSIONS.items() if "cases:write" in granted]
    people = await User.filter(is_active=True, role__in=roles).filter(Q(id__in=managers) | ~Q(role="manager"))
    people.sort(key=lambda person: (person.display_name or person.email).lower())
    return [person for person in people if await followups.may_own(person, case) is None]


async def case_page(request: Request) -> Response:
    """One case: the answer, the customer's timeline, notes; change its status or owner, or add a note."""
    p = await page(request, "cases")
    case = await _case(p, request.path_params["case_id"])
    error = None
    if request.method == "POST":
        access.require(p.user, "cases:write")
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        status = str(form.get("status") or "") or None
        owner = str(form.get("owner") or "").strip() or None
        note = str(form.get("note") or "").strip() or None
        if owner is not None and case.owner is not None and owner.lower() == case.owner.email:
            owner = None  # the form sends the current owner back when it is not changed
        try:
            if status in (None, case.status) and note is None and owner is None:
                raise BadRequest(p.t("Write a note, choose a new status or a new owner."))
            if note is not None and fields.unstorable(note):
                raise BadRequest(p.t("The note must not contain control characters."))
            if owner is not None and fields.USER_EMAIL.problem(owner):
                raise BadRequest(p.t("Choose an owner from the list."))
            await followups.update_case(
                case,
                p.state.settings,
                status=status if status != case.status else None,
                owner_email=owner,
                note=note,
                author=p.user,
                actor=p.user.email,
                source=audit.source_of(request),
                catalog=p.state.catalog,
            )
        except PulseError as refused:
            error = refused.localized(p.locale)
            case = await _case(p, request.path_params["case_id"])  # as stored: the refusal changed nothing
        else:
            return RedirectResponse(f"/cases/{case.id}?saved=1", status_code=303)
    notes = await CaseNote.filter(case_id=case.id).select_related("author").order_by("id")
    people = await case_notes.names(notes)
    for n in notes:
        n.text = case_notes.text(n, p.locale, people)  # an event in the reader's language, a person's words as written
    events = []
    if case.contact:
        events = await timeline.events(case.contact, p.state.catalog, await access.team_ids(p.user))
        for item in events:
            item["when"] = datetime.fromisoformat(item["at"])
    survey = p.state.catalog.get(case.survey_id)
    can_write = access.allowed(p.user, "cases:write")
    return p.render(
        "dashboard/case.html",
        {
            "case": case,
            "notes": notes,
            "events": events,
            "team_names": await team_names(),
            "error": error,
            "saved": request.method == "GET" and request.query_params.get("saved") == "1",
            "statuses": STATUS_LABELS,
            "next_statuses": [s for s in followups.STATUSES if s in followups.TRANSITIONS[case.status]],
            "owners": await owner_choices(case) if can_write else [],
            "now": datetime.now(UTC),
            "survey_title": localized(survey.title, p.locale, p.state.settings.company_name)
            if survey
            else case.survey_id,
            "can_write": can_write,
            "follow_up": await recovery.follow_up(case),
        },
        status_code=400 if error else 200,
    )


ROUTES = [
    Route("/contacts", contacts, name="contacts"),
    Route("/contacts/{external_id}", contact, name="contact"),
    Route("/cases", case_inbox, name="cases"),
    Route("/cases/{case_id}", case_page, methods=["GET", "POST"], name="case"),
]
