"""The OpenAPI 3.1 document of /api/v1, kept in step with the route table by a test."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import case_notes, engagement, fields, followups, rollups, touchpoints, trends
from pulse.catalog import Catalog

ERROR = {"$ref": "#/components/schemas/Error"}


def _q(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _op(
    summary: str,
    scope: str | None,
    parameters: list | None = None,
    body: dict | None = None,
    ok: str = "200",
    content: str = "application/json",
    errors: tuple = (400, 401, 403),
) -> dict:
    operation: dict = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {ok: {"description": "Success", "content": {content: {"schema": {}}}}},
    }
    if scope:
        operation["security"] = [{"apiKey": [scope]}]
        operation["description"] = f"Needs an API key with the `{scope}` scope."
    for code in errors:
        operation["responses"][str(code)] = {"description": "Error", "content": {"application/json": {"schema": ERROR}}}
    if body:
        operation["requestBody"] = body
    return operation


CASE_NOTE = {
    "type": "object",
    "required": ["kind", "data", "text", "body", "author", "created_at"],
    "properties": {
        "kind": {
            "type": "string",
            "enum": list(case_notes.KINDS),
            "description": "note: a person's words. Events Pulse recorded: status, owner, escalated (overdue, "
            "given to the parent team's owner), score_changed (the customer changed their answer).",
        },
        "data": {
            "type": "object",
            "description": "The event's codes: status {from, to} (status codes); owner and escalated {user_id}; "
            "score_changed {from, to, survey, comment}. Empty for a note.",
        },
        "text": {"type": "string", "description": "What the note says, in English (users by e-mail)."},
        "body": {"type": "string", "description": "The same as text (kept for clients written before kind)."},
        "author": {"type": ["string", "null"], "description": "E-mail of the person who wrote it, or null for Pulse."},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


def _case_op(operation: dict) -> dict:
    """A case operation whose answer is the case with its notes."""
    schema = {
        "type": "object",
        "properties": {
            "notes": {"type": "array", "items": {"$ref": "#/components/schemas/CaseNote"}},
            "follow_up": {
                "type": ["object", "null"],
                "description": "The one question asked after the case was resolved (null: none yet): invitation_id, "
                "status, skip_reason, send_at, and the answer's response_id and score.",
            },
        },
    }
    operation["responses"]["200"]["content"]["application/json"]["schema"] = schema
    return operation


DATE = {"type": "string", "format": "date", "examples": ["2026-03-01"]}
WHOLE = {"type": "integer", "minimum": 1, "maximum": fields.LARGEST_ID}


def _text(spec: fields.Text, **extra: object) -> dict:
    """A string schema with the field's own limits (pulse.fields), so generated values are the ones we take."""
    schema: dict = {"type": "string", "maxLength": spec.max_length, **extra}
    if spec.pattern is not None:
        schema["pattern"] = spec.pattern.pattern
    return schema


TEAM = _text(fields.TEAM, minLength=1)
LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
CURSOR = {"type": "string", "maxLength": 100}
VALUE = {"type": ["string", "number", "boolean", "null"]}
SEGMENT = fields.SEGMENT_VALUE.max_length
ATTRIBUTES = {
    "type": "object",
    "propertyNames": _text(fields.ATTRIBUTE_NAME, minLength=1),
    "additionalProperties": VALUE,
}
EVENT = {
    "type": "object",
    "required": ["external_id", "type", "occurred_at", "contact"],
    "additionalProperties": False,
    "properties": {
        "external_id": _text(fields.EVENT_ID, minLength=1),
        "source": _text(fields.SOURCE, default="api"),
        "type": _text(fields.TOUCHPOINT_TYPE),
        "occurred_at": {"type": "string", "format": "date-time"},
        "contact": {
            "type": "object",
            "required": ["external_id", "email"],
            "additionalProperties": False,
            "properties": {
                "external_id": _text(fields.CONTACT_ID, minLength=1),
                "email": _text(fields.CONTACT_EMAIL, description="An address, or empty when there is none."),
                "name": _text(fields.CONTACT_NAME),
                "locale": _text(fields.CONTACT_LOCALE),
                "timezone": _text(fields.CONTACT_TIMEZONE, description="An IANA zone such as Europe/Warsaw."),
                "attributes": ATTRIBUTES
                | {"description": f"Segment attributes (PULSE_SEGMENT_ATTRIBUTES) hold at most {SEGMENT} characters."},
            },
        },
        "team": TEAM,
        "agent": _text(fields.AGENT),
        "channel": _text(fields.CHANNEL),
        "stage": _text(fields.STAGE),
        "attributes": ATTRIBUTES,
    },
}
EMPLOYEE = {
    "type": "object",
    "required": ["external_id", "email"],
    "additionalProperties": False,
    "properties": {
        "external_id": _text(fields.EMPLOYEE_ID, minLength=1),
        "email": _text(fields.EMPLOYEE_EMAIL, format="email"),
        "name": _text(fields.EMPLOYEE_NAME),
        "team": TEAM,
        "locale": _text(fields.EMPLOYEE_LOCALE),
        "timezone": _text(fields.EMPLOYEE_TIMEZONE),
        "start_date": DATE,
        "location": _text(fields.EMPLOYEE_LABEL),
        "role_family": _text(fields.EMPLOYEE_LABEL),
        "active": {"type": "boolean", "default": True},
    },
}


def _batch(item: dict, key: str) -> dict:
    """One item, a list of them, or {key: [...]}: what the batch endpoints accept."""
    items = {"type": "array", "items": item, "minItems": 1, "maxItems": touchpoints.MAX_BATCH}
    wrapped = {"type": "object", "required": [key], "additionalProperties": False, "properties": {key: items}}
    return {"oneOf": [item, items, wrapped]}


def _paths(customer: dict, dimensions: dict) -> dict[str, dict[str, dict]]:
    """The operations; `customer` is the schema of a customer survey id, `dimensions` of a dimension name."""
    trend_filters = [
        _q("survey", "Survey id (nps, csat, ces).", True, customer),
        _q("window", "Rolling window in days, e.g. 28d.", schema={"type": "string", "pattern": "^[0-9]{1,3}d$"}),
        _q("interval", "day, week or month.", schema={"type": "string", "enum": list(trends.INTERVALS)}),
        _q("from", "First point date (YYYY-MM-DD).", schema=DATE),
        _q("to", "Last point date (YYYY-MM-DD), default today.", schema=DATE),
        _q("by", "Group by a dimension: touchpoint, team, channel, stage, lifecycle or a segment.", schema=dimensions),
        _q("question", "Question id (default: the survey's first).", schema={"type": "string", "maxLength": 64}),
        _q("team", "Filter: a team slug (includes its sub-teams). Other dimensions filter the same way.", schema=TEAM),
    ]
    rounds = _q("round", "Round number (default: the latest closed).", schema=WHOLE)
    return {
        "/api/v1/touchpoints": {
            "post": _op(
                "Send touchpoint events (one, a list, or {events: [...]}; or CSV); decide who is surveyed.",
                "touchpoints:write",
                ok="202",
                errors=(400, 401, 403, 413, 415),
                body={
                    "required": True,
                    "content": {
                        "application/json": {"schema": _batch(EVENT, "events")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
            )
        },
        "/api/v1/cases": {
            "get": _op(
                "List follow-up cases.",
                "cases:read",
                [
                    _q("status", "open, in_progress, resolved or closed_no_action.", schema=STATUS),
                    _q("team", "Team slug, with sub-teams.", schema=TEAM),
                    _q("overdue", "true or false.", schema={"type": "string", "enum": ["true", "false"]}),
                    _q("limit", "1 to 1000, default 100.", schema=LIMIT),
                    _q("cursor", "next_cursor of the previous page.", schema=CURSOR),
                ],
            )
        },
        "/api/v1/cases/orphans": {"get": _op("Count complaints nobody owns (should be 0).", "cases:read")},
        "/api/v1/cases/recovery": {
            "get": _op(
                "Recovery after a case, per team and in total, for the cases opened in a period: time to first "
                "contact, time to resolve (counts, median and mean seconds) and the detractors recovered.",
                "cases:read",
                [
                    _q("team", "A team's slug; its sub-teams are included.", schema=TEAM),
                    _q("from", "First day the cases were opened (default: 90 days before `to`).", schema=DATE),
                    _q("to", "Last day the cases were opened (default: today).", schema=DATE),
                ],
            )
        },
        "/api/v1/cases/{case_id}": {
            "get": _case_op(_op("One case with its notes.", "cases:read", [CASE_ID], errors=(401, 403, 404))),
            "patch": _case_op(
                _op(
                    "Change a case's status or owner, or add a note.",
                    "cases:write",
                    [CASE_ID],
                    errors=(400, 401, 403, 404, 409),
                    body={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "minProperties": 1,
                                    "additionalProperties": False,
                                    "properties": {
                                        "status": STATUS,
                                        "owner": _text(
                                            fields.USER_EMAIL,
                                            format="email",
                                            description="E-mail of an active admin, or of a manager whose teams "
                                            "include the case's team.",
                                        ),
                                        "note": _text(fields.CASE_NOTE, minLength=1),
                                    },
                                }
                            }
                        },
                    },
                )
            ),
        },
        "/api/v1/responses": {
            "get": _op(
                "Confirmed answers, cursor-paginated.",
                "responses:read",
                [
                    _q("survey", "Survey id.", schema=customer),
                    _q("since", "ISO date or date-time.", schema={"type": "string", "format": "date-time"}),
                    _q("limit", "1 to 1000.", schema=LIMIT),
                    _q("cursor", "next_cursor of the previous page.", schema=CURSOR),
                ],
            )
        },
        "/api/v1/responses.csv": {
            "get": _op(
                "Confirmed answers as CSV (streamed, formula-safe).",
                "responses:read",
                [
                    _q("survey", "Survey id.", schema=customer),
                    _q("since", "First day.", schema=DATE),
                    _q("until", "Last day.", schema=DATE),
                    _q("team", "Team slug.", schema=TEAM),
                    _q("bom", "1 to start with a UTF-8 BOM (Excel).", schema={"type": "string", "enum": ["0", "1"]}),
                ],
                content="text/csv",
            )
        },
        "/api/v1/contacts/{external_id}/timeline": {
            "get": _op(
                "A contact's touchpoints, invitations (with skip reasons), answers and cases in time order.",
                "responses:read",
                [_path("external_id", "The contact's id in your CRM.", _text(fields.CONTACT_ID, minLength=1))],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/contacts/{external_id}/export": {
            "get": _op(
                "Everything Pulse holds about a contact (data-subject access request), as one JSON document: "
                "touchpoints, invitations with why one was not sent, answers with earlier answers, cases and notes, "
                "unsubscribes. Recorded in the audit log.",
                "privacy:read",
                [_path("external_id", "The contact's id in your CRM.", _text(fields.CONTACT_ID, minLength=1))],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/contacts/{external_id}": {
            "delete": _op(
                "Erase a contact: name, e-mail, attributes, comments, notes on their cases, e-mails and undelivered "
                "webhook events go; scores stay as anonymous counts. The answer is the erasure receipt. The address "
                "and external id are suppressed: later events for them are skipped with the reason `erased`.",
                "privacy:write",
                [_path("external_id", "The contact's id in your CRM.", _text(fields.CONTACT_ID, minLength=1))],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/employees/{external_id}": {
            "delete": _op(
                "Erase an employee: roster row, invitations and their e-mails; their anonymous answers stay. The "
                "answer is the erasure receipt.",
                "privacy:write",
                [_path("external_id", "The employee's id in your HR system.", _text(fields.EMPLOYEE_ID, minLength=1))],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/suppressions/{value}": {
            "delete": _op(
                "Lift the suppression of an erased person's e-mail address or external id, when they come back "
                "with consent: their events are imported again.",
                "privacy:write",
                [
                    _path(
                        "value",
                        "The e-mail address or external id.",
                        {"type": "string", "minLength": 1, "maxLength": 254},
                    )
                ],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/surveys/translations": {
            "get": _op(
                "The state of every survey translation (current, stale: its English text changed since, or "
                "unrecorded), per survey, language and key, and what PULSE_STALE_TRANSLATIONS sends.",
                "analytics:read",
                [_q("lang", "Only this language.", schema={"type": "string", "enum": ["pl", "it", "sl"]})],
                errors=(400, 401, 403, 409),
            )
        },
        "/api/v1/surveys/translations/{locale}": {
            "get": _op(
                "One language's survey texts for translators: PO (msgctxt survey/key, stale ones fuzzy) or "
                "XLIFF 1.2 (stale ones needs-review-translation).",
                "analytics:read",
                [
                    _path("locale", "The language.", {"type": "string", "enum": ["pl", "it", "sl"]}),
                    _q("format", "po (default) or xliff.", schema={"type": "string", "enum": ["po", "xliff"]}),
                ],
                content="text/x-gettext-translation",
                errors=(400, 401, 403, 409),
            )
        },
        "/api/v1/trends": {
            "get": _op(
                "Rolling metric per point, with n, a 95% interval and small_sample (n < 10), optionally per group.",
                "analytics:read",
                trend_filters,
            )
        },
        "/api/v1/trends/compare": {
            "get": _op(
                "Compare two periods: difference, interval, p-value and significance (too_few below min_n answers).",
                "analytics:read",
                [
                    _q("survey", "Survey id.", True, customer),
                    _q("a", "FROM..TO", True, PERIOD),
                    _q("b", "FROM..TO", True, PERIOD),
                    _q("by", "Group by a dimension.", schema=dimensions),
                ],
            )
        },
        "/api/v1/insights/loyalty-quadrant": {
            "get": _op(
                "Contacts by latest CSAT and NPS; the satisfied-but-not-loyal named.",
                "analytics:read",
                [_q("limit", "Listed contacts, 0 to 1000.", schema={"type": "integer", "minimum": 0, "maximum": 1000})],
            )
        },
        "/api/v1/insights/at-risk": {
            "get": _op(
                "Customers at risk, riskiest first, each with the signals that flagged them (in words, with dates).",
                "analytics:read",
                [
                    _q("team", "A team's slug; its sub-teams are included. Empty: every team.", schema=TEAM),
                    _q(
                        "limit",
                        "Listed customers, 1 to 1000.",
                        schema={"type": "integer", "minimum": 1, "maximum": 1000},
                    ),
                ],
            )
        },
        "/api/v1/insights/themes": {
            "get": _op(
                "What one customer survey's comments are about: per theme, how many comments in the unhappy band, "
                "the top band and between mention it, its count per week or month, and a few example comments "
                "(customer comments only; never who wrote them). Themes and their rules: surveys/insights/themes.toml.",
                "analytics:read",
                [
                    _q("survey", "Survey id (a customer survey).", True, customer),
                    _q("team", "A team's slug; its sub-teams are included. Empty: every team.", schema=TEAM),
                    _q("from", "First day (default: 182 days before to).", schema=DATE),
                    _q("to", "Last day (default: today).", schema=DATE),
                ],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/insights/lifecycle": {
            "get": _op(
                "The metric by days since the sale and by stage.",
                "analytics:read",
                [
                    _q("survey", "Survey id.", True, customer),
                    _q("from", "First day.", schema=DATE),
                    _q("to", "Last day.", schema=DATE),
                ],
            )
        },
        "/api/v1/employees": {
            "post": _op(
                "Upsert the employee roster by external id; leavers: active=false (never surveyed again).",
                "employees:write",
                errors=(400, 401, 403, 413, 415),
                body={
                    "required": True,
                    "content": {
                        "application/json": {"schema": _batch(EMPLOYEE, "employees")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
            )
        },
        "/api/v1/engagement/rounds": {
            "get": _op("Pulse rounds with their questions and response counts.", "engagement:read")
        },
        "/api/v1/engagement/results": {
            "get": _op(
                "A closed round's eNPS (or a driver's mean) per team or attribute; small groups are suppressed.",
                "engagement:read",
                [
                    rounds,
                    _q("question", "Question id.", schema={"type": "string", "maxLength": 64}),
                    _q("by", "team, location, role_family or tenure.", schema=ENGAGEMENT_BY),
                ],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/engagement/comments": {
            "get": _op(
                "Comments of a group, only when it is large enough.",
                "engagement:read",
                [
                    rounds,
                    _q("group", "company or team:<slug>.", schema={"type": "string", "maxLength": 70}),
                    _q("question", "Question id.", schema={"type": "string", "maxLength": 64}),
                ],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/engagement/ex-cx": {
            "get": _op(
                "Each team's eNPS beside the NPS and CSAT of the customers it served in the same period.",
                "engagement:read",
                [rounds],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/v1/openapi.json": {"get": _op("This document.", None, errors=())},
    }


STATUS = {"type": "string", "enum": list(followups.STATUSES)}
CASE_ID = _path("case_id", "The case id.", WHOLE)
PERIOD = {
    "type": "string",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\.\.[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "examples": ["2026-01-01..2026-03-31"],
}
ENGAGEMENT_BY = {"type": "string", "enum": list(engagement.DIMENSIONS)}
# without a catalog (the route test), ids are plain strings
PATHS = _paths({"type": "string", "maxLength": 64}, {"type": "string", "maxLength": 64})


def document(catalog: Catalog | None = None, segments: tuple[str, ...] = ()) -> dict:
    """The document; with the catalog and the segment attributes, survey ids and dimensions are enumerated."""
    paths = PATHS
    if catalog is not None:
        customer = {"type": "string", "enum": [s.id for s in catalog if s.audience == "customer"]}
        paths = _paths(customer, {"type": "string", "enum": list(rollups.dimensions(segments)[1:])})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pulse API",
            "version": "1",
            "description": "Touchpoints in; answers, cases, trends and insights out. Errors are "
            '{"error": "<a sentence>", "errors": [...]}.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "Created with `pulse apikeys create`."}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "errors"],
                    "properties": {"error": {"type": "string"}, "errors": {"type": "array"}},
                },
                "CaseNote": CASE_NOTE,
            },
        },
    }


async def openapi(request: Request) -> Response:
    state = request.app.state
    return JSONResponse(document(state.catalog, state.settings.segment_attributes))


ROUTES = [Route("/api/v1/openapi.json", openapi, methods=["GET"], name="api_openapi")]
