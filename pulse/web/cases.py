"""Working the cases and the customers: the case inbox, one case, the contacts list and one contact."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.expressions import Q

from pulse import access, fields, followups, timeline
from pulse.catalog import localized
from pulse.errors import BadRequest, NotFound, PulseError
from pulse.i18n import N_
from pulse.models import CaseNote, Contact, FollowUpCase
from pulse.web.auth import CSRF_FIELD, check_csrf
from pulse.web.dashboard import Page, page

STATUS_LABELS = {
    "open": N_("Open"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "closed_no_action": N_("Closed, no action"),
}


async def contacts(request: Request) -> Response:
    """Find a customer by name, e-mail or CRM id."""
    p = await page(request, "contacts")
    q = (request.query_params.get("q") or "").strip()[:100]
    if fields.unstorable(q):
        raise BadRequest(p.t("The search must not contain control characters."))
    found: list[Contact] = []
    if q:
        query = Contact.filter(Q(external_id__icontains=q) | Q(email__icontains=q) | Q(name__icontains=q))
        ids = await access.team_ids(p.user)
        if ids is not None:
            query = query.filter(timeline.in_teams(ids))
        found = await query.order_by("name").limit(50)
    return p.render("dashboard/contacts.html", {"q": q, "found": found})


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
    return p.render("dashboard/contact.html", {"contact": person, "events": events, "statuses": STATUS_LABELS})


async def case_inbox(request: Request) -> Response:
    """My cases, overdue first; admins and analysts may look at everyone's."""
    p = await page(request, "cases")
    show = request.query_params.get("show", "mine" if p.user.role == "manager" else "all")
    query = FollowUpCase.filter(status__in=followups.OPEN_STATUSES).select_related("owner", "team", "contact")
    ids = await access.team_ids(p.user)
    if ids is not None:  # by team only: owning a case of a team one has left opens nothing
        query = query.filter(team_id__in=ids)
    if show == "mine":
        query = query.filter(owner_id=p.user.id)
    cases = await query.order_by("due_at").limit(500)
    now = datetime.now(UTC)
    return p.render("dashboard/cases.html", {"cases": cases, "now": now, "show": show, "statuses": STATUS_LABELS})


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


async def case_page(request: Request) -> Response:
    """One case: the answer, the customer's timeline, notes; change its status or add a note."""
    p = await page(request, "cases")
    case = await _case(p, request.path_params["case_id"])
    error = None
    if request.method == "POST":
        access.require(p.user, "cases:write")
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        status = str(form.get("status") or "") or None
        note = str(form.get("note") or "").strip() or None
        try:
            if status is None and note is None:
                raise BadRequest(p.t("Write a note or choose a new status."))
            if note is not None and fields.unstorable(note):
                raise BadRequest(p.t("The note must not contain control characters."))
            await followups.update_case(
                case, p.state.settings, status=status if status != case.status else None, note=note, author=p.user
            )
        except PulseError as refused:
            error = refused.message
        else:
            return RedirectResponse(f"/cases/{case.id}", status_code=303)
    notes = await CaseNote.filter(case_id=case.id).select_related("author").order_by("id")
    events = []
    if case.contact:
        events = await timeline.events(case.contact, p.state.catalog, await access.team_ids(p.user))
        for item in events:
            item["when"] = datetime.fromisoformat(item["at"])
    survey = p.state.catalog.get(case.survey_id)
    return p.render(
        "dashboard/case.html",
        {
            "case": case,
            "notes": notes,
            "events": events,
            "error": error,
            "statuses": STATUS_LABELS,
            "next_statuses": sorted(followups.TRANSITIONS[case.status]),
            "now": datetime.now(UTC),
            "survey_title": localized(survey.title, p.locale, p.state.settings.company_name)
            if survey
            else case.survey_id,
            "can_write": access.allowed(p.user, "cases:write"),
        },
        status_code=400 if error else 200,
    )


ROUTES = [
    Route("/contacts", contacts, name="contacts"),
    Route("/contacts/{external_id}", contact, name="contact"),
    Route("/cases", case_inbox, name="cases"),
    Route("/cases/{case_id}", case_page, methods=["GET", "POST"], name="case"),
]
