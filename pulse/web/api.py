"""The REST API under /api/v1, for the systems that send touchpoints (API key with scopes)."""

from __future__ import annotations

import csv
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import touchpoints
from pulse.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from pulse.web.auth import api_key

MAX_BODY_BYTES = 10 * 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (413) to read more than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit // (1024 * 1024)} MB. Send smaller batches.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit // (1024 * 1024)} MB. Send smaller batches.")
        chunks.append(chunk)
    return b"".join(chunks)


def _events_from_json(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequest(f"The body is not valid JSON: {error}.") from None
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
    return JSONResponse({"results": [o.as_json() for o in outcomes]}, status_code=202)


ROUTES = [
    Route("/api/v1/touchpoints", post_touchpoints, methods=["POST"], name="api_touchpoints"),
]
