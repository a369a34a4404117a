"""The OpenAPI 3.1 document of /api/v1, kept in step with the route table by a test."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ERROR = {"$ref": "#/components/schemas/Error"}


def _q(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


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


TREND_FILTERS = [
    _q("survey", "Survey id (nps, csat, ces).", True),
    _q("window", "Rolling window in days, e.g. 28d."),
    _q("interval", "day, week or month.", schema={"enum": ["day", "week", "month"]}),
    _q("from", "First point date (YYYY-MM-DD)."),
    _q("to", "Last point date (YYYY-MM-DD), default today."),
    _q("by", "Group by a dimension: touchpoint, team, channel, stage, lifecycle or a segment."),
    _q("team", "Filter: a team slug (includes its sub-teams). Other dimensions filter the same way."),
]
EVENT = {
    "type": "object",
    "required": ["external_id", "type", "occurred_at", "contact"],
    "properties": {
        "external_id": {"type": "string"},
        "source": {"type": "string", "default": "api"},
        "type": {"type": "string"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "contact": {
            "type": "object",
            "required": ["external_id", "email"],
            "properties": {
                "external_id": {"type": "string"},
                "email": {"type": "string"},
                "name": {"type": "string"},
                "locale": {"type": "string"},
                "timezone": {"type": "string"},
                "attributes": {"type": "object"},
            },
        },
        "team": {"type": "string"},
        "agent": {"type": "string"},
        "channel": {"type": "string"},
        "stage": {"type": "string"},
        "attributes": {"type": "object"},
    },
}

PATHS: dict[str, dict[str, dict]] = {
    "/api/v1/touchpoints": {
        "post": _op(
            "Send touchpoint events (one, a list, or {events: [...]}; or CSV); decide who is surveyed.",
            "touchpoints:write",
            ok="202",
            errors=(400, 401, 403, 413, 415),
            body={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                EVENT,
                                {"type": "array", "items": EVENT},
                                {"type": "object", "properties": {"events": {"type": "array", "items": EVENT}}},
                            ]
                        }
                    },
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
                _q("status", "open, in_progress, resolved or closed_no_action."),
                _q("team", "Team slug, with sub-teams."),
                _q("overdue", "true or false."),
                _q("limit", "1 to 1000, default 100."),
                _q("cursor", "next_cursor of the previous page."),
            ],
        )
    },
    "/api/v1/cases/orphans": {"get": _op("Count complaints nobody owns (should be 0).", "cases:read")},
    "/api/v1/cases/{case_id}": {
        "get": _op(
            "One case with its notes.", "cases:read", [_path("case_id", "The case id.")], errors=(401, 403, 404)
        ),
        "patch": _op(
            "Change a case's status or owner, or add a note.",
            "cases:write",
            [_path("case_id", "The case id.")],
            errors=(400, 401, 403, 404, 409),
            body={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string"},
                                "owner": {
                                    "type": "string",
                                    "description": "E-mail of an active admin, or of a manager whose teams "
                                    "include the case's team.",
                                },
                                "note": {"type": "string"},
                            },
                        }
                    }
                },
            },
        ),
    },
    "/api/v1/responses": {
        "get": _op(
            "Confirmed answers, cursor-paginated.",
            "responses:read",
            [
                _q("survey", "Survey id."),
                _q("since", "ISO date or date-time."),
                _q("limit", "1 to 1000."),
                _q("cursor", "next_cursor of the previous page."),
            ],
        )
    },
    "/api/v1/responses.csv": {
        "get": _op(
            "Confirmed answers as CSV (streamed, formula-safe).",
            "responses:read",
            [
                _q("survey", "Survey id."),
                _q("since", "First day."),
                _q("until", "Last day."),
                _q("team", "Team slug."),
                _q("bom", "1 to start with a UTF-8 BOM (Excel)."),
            ],
            content="text/csv",
        )
    },
    "/api/v1/contacts/{external_id}/timeline": {
        "get": _op(
            "A contact's touchpoints, invitations (with skip reasons), answers and cases in time order.",
            "responses:read",
            [_path("external_id", "The contact's id in your CRM.")],
            errors=(401, 403, 404),
        )
    },
    "/api/v1/trends": {
        "get": _op(
            "Rolling metric per point, with n, a 95% interval and small_sample (n < 10), optionally per group.",
            "analytics:read",
            TREND_FILTERS,
        )
    },
    "/api/v1/trends/compare": {
        "get": _op(
            "Compare two periods: difference, interval, p-value and significance (too_few below min_n answers).",
            "analytics:read",
            [
                _q("survey", "Survey id.", True),
                _q("a", "FROM..TO", True),
                _q("b", "FROM..TO", True),
                _q("by", "Group by a dimension."),
            ],
        )
    },
    "/api/v1/insights/loyalty-quadrant": {
        "get": _op(
            "Contacts by latest CSAT and NPS; the satisfied-but-not-loyal named.",
            "analytics:read",
            [_q("limit", "Listed contacts, 0 to 1000.")],
        )
    },
    "/api/v1/insights/lifecycle": {
        "get": _op(
            "The metric by days since the sale and by stage.",
            "analytics:read",
            [_q("survey", "Survey id.", True), _q("from", "First day."), _q("to", "Last day.")],
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
                    "application/json": {"schema": {"type": "array"}},
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
                _q("round", "Round number (default: the latest closed)."),
                _q("question", "Question id."),
                _q("by", "team, location, role_family or tenure."),
            ],
            errors=(400, 401, 403, 404),
        )
    },
    "/api/v1/engagement/comments": {
        "get": _op(
            "Comments of a group, only when it is large enough.",
            "engagement:read",
            [_q("round", "Round number."), _q("group", "company or team:<slug>.")],
            errors=(400, 401, 403, 404),
        )
    },
    "/api/v1/engagement/ex-cx": {
        "get": _op(
            "Each team's eNPS beside the NPS and CSAT of the customers it served in the same period.",
            "engagement:read",
            [_q("round", "Round number.")],
            errors=(400, 401, 403, 404),
        )
    },
    "/api/v1/openapi.json": {"get": _op("This document.", None, errors=())},
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pulse API",
            "version": "1",
            "description": "Touchpoints in; answers, cases, trends and insights out. Errors are "
            '{"error": "<a sentence>", "errors": [...]}.',
        },
        "servers": [{"url": "/"}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "Created with `pulse apikeys create`."}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "errors"],
                    "properties": {"error": {"type": "string"}, "errors": {"type": "array"}},
                }
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


ROUTES = [Route("/api/v1/openapi.json", openapi, methods=["GET"], name="api_openapi")]
