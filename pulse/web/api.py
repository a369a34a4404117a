"""The REST API under /api/v1, for the systems that send touchpoints (API key with scopes)."""

from __future__ import annotations

import base64
import binascii
import csv
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import audit, case_notes, fields, followups, privacy, recovery, roster, teams, timeline, touchpoints
from pulse.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from pulse.models import CaseNote, Contact, FollowUpCase, Team
from pulse.models import Response as ResponseRow
from pulse.web.auth import api_key
from pulse.web.body import parse_json, read_body, read_json

LARGEST_BIG_ID = 2**63 - 1  # responses have 64-bit ids


def _events_from_json(body: bytes) -> list[Any]:
    data = parse_json(body)
    if isinstance(data, dict) and "events" in data:
        if set(data) != {"events"}:
            raise BadRequest("A batch is an object with only an 'events' list.")
        data = data["events"]
        if not isinstance(data, list):
            raise BadRequest("'events' must be a list of event objects.")
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise BadRequest('The body must be an event object, a list of event objects, or {"events": [...]}.')
    return data


async def post_touchpoints(request: Request) -> Response:
    """Store touchpoint events and decide who is surveyed: 202 with one result per event."""
    await api_key(request, "touchpoints:write")
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    body = await read_body(request)
    if media == "text/csv":
        try:
            events = touchpoints.events_from_csv(body.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise BadRequest("The CSV must be UTF-8 encoded.") from None
        except (ValueError, csv.Error) as error:
            raise BadRequest(f"The CSV cannot be read: {error}.") from None
    elif media in {"application/json", ""}:
        events = _events_from_json(body)
    else:
        raise UnsupportedMediaType("Send application/json or text/csv.")
    if not events:
        raise BadRequest("The batch is empty: send at least one event.")
    if len(events) > touchpoints.MAX_BATCH:
        raise PayloadTooLarge(
            f"A batch holds at most {touchpoints.MAX_BATCH} events; this one has {len(events)}. Split it."
        )
    state = request.app.state
    outcomes = await touchpoints.ingest(events, state.catalog, state.settings)
    return Response(touchpoints.results_json(outcomes), status_code=202, media_type="application/json")


ROUTES = [
    Route("/api/v1/touchpoints", post_touchpoints, methods=["POST"], name="api_touchpoints"),
]


# --- cases, responses, timelines -------------------------------------------------------------------------


def _cursor(raw: str | None, largest: int = fields.LARGEST_ID) -> int:
    """The id after which a page starts; cursors are opaque to clients."""
    if not raw:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(raw.encode() + b"==").decode().partition(":")
    except (ValueError, UnicodeError, binascii.Error):
        kind, value = "", ""
    if kind != "after" or not fields.WHOLE_NUMBER.fullmatch(value) or int(value) > largest:
        raise BadRequest("cursor is not valid: pass back the next_cursor of the previous page.")
    return int(value)


def _next_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def _limit(request: Request, default: int = 100, most: int = 1000) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    return fields.whole_number(raw, "limit", 1, most)


def _since(raw: str | None, name: str = "since") -> datetime | None:
    return fields.parse_moment(raw, name) if raw else None


async def _case_json(case: FollowUpCase, *, notes: bool = False) -> dict:
    data = followups.case_payload(case)
    data["owner"] = case.owner.email if case.owner else None
    data["team"] = case.team.slug if case.team else None
    data["contact"] = case.contact.external_id if case.contact else None
    data["overdue"] = case.status in followups.OPEN_STATUSES and case.due_at < datetime.now(UTC)
    data["created_at"] = case.created_at.isoformat()
    if notes:
        data["comment"] = case.response.comment if case.response else None
        listed = await CaseNote.filter(case_id=case.id).select_related("author").order_by("id")
        people = await case_notes.names(listed, emails=True)
        data["notes"] = []
        for n in listed:
            text = case_notes.text(
                n, "en", people, codes=True
            )  # English, users by e-mail; `kind` and `data` carry the codes
            data["notes"].append(
                {
                    "kind": n.kind,
                    "data": n.data,
                    "text": text,
                    "body": text,  # as before events had a kind: a person's words, or the event's English sentence
                    "author": n.author.email if n.author else None,
                    "created_at": n.created_at.isoformat(),
                }
            )
        follow_up = await recovery.follow_up(case)  # the one question after resolution, and its answer
        if follow_up is not None and follow_up["send_at"] is not None:
            follow_up["send_at"] = follow_up["send_at"].isoformat()
        data["follow_up"] = follow_up
    return data


async def list_cases(request: Request) -> Response:
    await api_key(request, "cases:read")
    query = FollowUpCase.all()
    status = request.query_params.get("status")
    if status:
        if status not in followups.STATUSES:
            raise BadRequest(f"status must be one of {', '.join(followups.STATUSES)}.")
        query = query.filter(status=status)
    if slug := request.query_params.get("team"):
        team = await Team.get_or_none(slug=fields.TEAM.check(slug, "team"))
        if team is None:
            raise BadRequest(f"No team has the slug {slug!r}.")
        query = query.filter(team_id__in=await teams.subtree_ids(team.id))
    overdue = request.query_params.get("overdue")
    if overdue not in (None, "", "true", "false"):
        raise BadRequest("overdue must be true or false.")
    now = datetime.now(UTC)
    if overdue == "true":
        query = query.filter(status__in=followups.OPEN_STATUSES, due_at__lt=now)
    elif overdue == "false":
        query = query.exclude(status__in=followups.OPEN_STATUSES, due_at__lt=now)
    limit = _limit(request)
    rows = (
        await query.filter(id__gt=_cursor(request.query_params.get("cursor")))
        .order_by("id")
        .limit(limit + 1)
        .select_related("owner", "team", "contact")
    )
    page = rows[:limit]
    return JSONResponse(
        {
            "cases": [await _case_json(c) for c in page],
            "next_cursor": _next_cursor(page[-1].id) if len(rows) > limit else None,
        }
    )


async def _case(request: Request) -> FollowUpCase:
    raw = request.path_params["case_id"]
    case_id = fields.identifier(raw)
    case = (
        await FollowUpCase.get_or_none(id=case_id).select_related("owner", "team", "contact", "response")
        if case_id is not None
        else None
    )
    if case is None:
        raise NotFound(f"No case has the id {raw}.")
    return case


async def get_case(request: Request) -> Response:
    await api_key(request, "cases:read")
    return JSONResponse(await _case_json(await _case(request), notes=True))


async def patch_case(request: Request) -> Response:
    key = await api_key(request, "cases:write")
    case = await _case(request)
    data = await read_json(request, 100_000)
    if not isinstance(data, dict) or not data:
        raise BadRequest("The body must be a JSON object with status, owner and/or note.")
    unknown = sorted(set(data) - {"status", "owner", "note"})
    if unknown:
        raise BadRequest(f"Unknown field {', '.join(unknown)}: a case takes status, owner and note.")
    for name in data:
        if not isinstance(data[name], str):
            raise BadRequest(f"{name} must be a string.")
    if "owner" in data:
        fields.USER_EMAIL.check(data["owner"], "owner")
    if "note" in data:
        fields.CASE_NOTE.check(data["note"], "note")
    await followups.update_case(
        case,
        request.app.state.settings,
        status=data.get("status"),
        owner_email=data.get("owner"),
        note=data.get("note"),
        actor=audit.api_actor(key),
        source=audit.source_of(request),
        catalog=request.app.state.catalog,
    )
    case = await FollowUpCase.get(id=case.id).select_related("owner", "team", "contact", "response")
    return JSONResponse(await _case_json(case, notes=True))


async def case_orphans(request: Request) -> Response:
    await api_key(request, "cases:read")
    return JSONResponse(await followups.orphans(request.app.state.catalog))


def _response_json(response: ResponseRow, survey_catalog) -> dict:
    survey = survey_catalog.get(response.survey_id)
    return {
        "id": response.id,
        "survey": response.survey_id,
        "question": response.question_id,
        "score": response.score,
        "band": survey.band_for(response.score).name if survey else None,
        "comment": response.comment,
        "locale": response.locale,
        "answered_at": response.answered_at.isoformat() if response.answered_at else None,
        "day": response.day.isoformat(),
        "touchpoint_type": response.touchpoint_type,
        "team": response.team.slug if response.team else None,
        "channel": response.channel,
        "stage": response.stage,
        "dimensions": response.dimensions,
        "history": response.history,
    }


async def list_responses(request: Request) -> Response:
    await api_key(request, "responses:read")
    catalog = request.app.state.catalog
    query = ResponseRow.filter(confirmed=True, discarded=False)
    if survey_id := request.query_params.get("survey"):
        if catalog.get(survey_id) is None:
            raise BadRequest(f"Unknown survey {survey_id!r}; the surveys are {', '.join(s.id for s in catalog)}.")
        if catalog.get(survey_id).audience == "employee":
            raise BadRequest(
                "Employee pulses are never listed answer by answer: read them under /api/v1/engagement, "
                "which protects anonymity."
            )
        query = query.filter(survey_id=survey_id)
    if since := _since(request.query_params.get("since")):
        query = query.filter(answered_at__gte=since)
    limit = _limit(request)
    rows = (
        await query.filter(id__gt=_cursor(request.query_params.get("cursor"), LARGEST_BIG_ID))
        .order_by("id")
        .limit(limit + 1)
        .select_related("team")
    )
    page = rows[:limit]
    return JSONResponse(
        {
            "responses": [_response_json(r, catalog) for r in page],
            "next_cursor": _next_cursor(page[-1].id) if len(rows) > limit else None,
        }
    )


async def contact_timeline(request: Request) -> Response:
    """Everything that happened with one customer, in time order: the CRM's view of them."""
    await api_key(request, "responses:read")
    external_id = fields.CONTACT_ID.check(request.path_params["external_id"], "external_id")
    contact = await Contact.get_or_none(external_id=external_id)
    if contact is None:
        raise NotFound(f"No contact has the external id {external_id!r}.")
    return JSONResponse(
        {
            "contact": {
                "external_id": contact.external_id,
                "email": contact.email,
                "name": contact.name,
                "locale": contact.locale,
                "opted_out": contact.opted_out_at is not None,
                "bounced": contact.bounced_at is not None,
            },
            "events": await timeline.events(contact, request.app.state.catalog),
        }
    )


async def post_employees(request: Request) -> Response:
    """Upsert roster rows by external id (JSON list, {"employees": [...]} or CSV); leavers: active=false."""
    await api_key(request, "employees:write")
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    body = await read_body(request)
    if media == "text/csv":
        try:
            rows = roster.rows_from_csv(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, csv.Error) as error:
            raise BadRequest(f"The CSV cannot be read: {error}.") from None
    elif media in {"application/json", ""}:
        data = parse_json(body)
        rows = data.get("employees") if isinstance(data, dict) and "employees" in data else data
        if isinstance(rows, dict):
            rows = [rows]
        if not isinstance(rows, list):
            raise BadRequest('The body must be an employee object, a list of them, or {"employees": [...]}.')
    else:
        raise UnsupportedMediaType("Send application/json or text/csv.")
    if not rows:
        raise BadRequest("The batch is empty: send at least one employee.")
    if len(rows) > touchpoints.MAX_BATCH:
        raise PayloadTooLarge(f"A batch holds at most {touchpoints.MAX_BATCH} employees; this one has {len(rows)}.")
    results = await roster.upsert(
        rows, first_line=0 if media != "text/csv" else 2, secret_key=request.app.state.settings.secret_key
    )
    return JSONResponse({"results": [r.as_json() for r in results]}, status_code=200)


# --- data-subject requests (pulse/privacy.py) ---------------------------------------------------------------


def _actor(key) -> str:
    return f"api key {key.name} ({key.prefix})"


def _person_id(request: Request, spec: fields.Text) -> str:
    external_id = request.path_params["external_id"]
    if not external_id.strip():
        raise BadRequest("external_id must not be empty.")
    return spec.check(external_id, "external_id")


async def _erase(request: Request, spec: fields.Text, erase) -> Response:
    """Erase the person the path names with `erase` (pulse/privacy.py); the answer is the erasure receipt."""
    key = await api_key(request, "privacy:write")
    receipt = await erase(
        _person_id(request, spec),
        request.app.state.settings.secret_key,
        actor=_actor(key),
        source=audit.source_of(request),
        mail_catcher=getattr(request.app.state, "mail_catcher", None),
    )
    return JSONResponse(receipt.as_json())


async def erase_contact(request: Request) -> Response:
    """Erase a customer; the answer is the erasure receipt."""
    return await _erase(request, fields.CONTACT_ID, privacy.erase_contact)


async def erase_employee(request: Request) -> Response:
    """Erase an employee from the roster; their anonymous answers stay anonymous."""
    return await _erase(request, fields.EMPLOYEE_ID, privacy.erase_employee)


async def export_contact(request: Request) -> Response:
    """Everything Pulse holds about a customer, as one JSON document."""
    key = await api_key(request, "privacy:read")
    external_id = _person_id(request, fields.CONTACT_ID)
    state = request.app.state
    document = await privacy.export_contact(
        external_id, state.catalog, state.settings.company_name, actor=_actor(key), source=audit.source_of(request)
    )
    return JSONResponse(document, headers={"content-disposition": 'attachment; filename="personal-data.json"'})


async def lift_suppression(request: Request) -> Response:
    """Lift the suppression of an erased person's e-mail address or external id (they came back with consent)."""
    key = await api_key(request, "privacy:write")
    value = request.path_params["value"]
    if len(value) > 254 or fields.unstorable(value):
        raise BadRequest("value must be an e-mail address or an external id of at most 254 characters.")
    removed = await privacy.lift(
        request.app.state.settings.secret_key, value, actor=_actor(key), source=audit.source_of(request)
    )
    return JSONResponse({"lifted": removed})


ROUTES += [
    Route("/api/v1/employees", post_employees, methods=["POST"], name="api_employees"),
    Route("/api/v1/cases", list_cases, methods=["GET"], name="api_cases"),
    Route("/api/v1/cases/orphans", case_orphans, methods=["GET"], name="api_case_orphans"),
    Route("/api/v1/cases/{case_id}", get_case, methods=["GET"], name="api_case"),
    Route("/api/v1/cases/{case_id}", patch_case, methods=["PATCH"], name="api_case_update"),
    Route("/api/v1/responses", list_responses, methods=["GET"], name="api_responses"),
    Route("/api/v1/contacts/{external_id}/timeline", contact_timeline, methods=["GET"], name="api_timeline"),
    Route("/api/v1/contacts/{external_id}/export", export_contact, methods=["GET"], name="api_contact_export"),
    Route("/api/v1/contacts/{external_id}", erase_contact, methods=["DELETE"], name="api_contact_erase"),
    Route("/api/v1/employees/{external_id}", erase_employee, methods=["DELETE"], name="api_employee_erase"),
    Route("/api/v1/suppressions/{value}", lift_suppression, methods=["DELETE"], name="api_suppression_lift"),
]
