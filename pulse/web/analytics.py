"""Analytics API (scope analytics:read): trends, comparisons, insights, and the CSV export of answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pulse import audit, export, fields, insights, trends
from pulse.errors import BadRequest
from pulse.web.auth import api_key


def today(request: Request) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


async def get_trends(request: Request) -> Response:
    """Rolling metric per point in time, optionally per group, each point with n and a 95% interval."""
    await api_key(request, "analytics:read")
    state = request.app.state
    query = trends.parse_query(
        dict(request.query_params), state.catalog, state.settings.segment_attributes, today(request)
    )
    return JSONResponse(await trends.trend(query))


async def get_compare(request: Request) -> Response:
    """Period b against period a: both values, the difference, its interval, p and significance."""
    await api_key(request, "analytics:read")
    state = request.app.state
    params = dict(request.query_params)
    a = trends.parse_range(params.pop("a", None), "a")
    b = trends.parse_range(params.pop("b", None), "b")
    params.setdefault("from", min(a[0], b[0]).isoformat())
    params.setdefault("to", max(a[1], b[1]).isoformat())
    params["interval"] = "month"  # points are not used here; keep the point count check trivial
    query = trends.parse_query(params, state.catalog, state.settings.segment_attributes, today(request))
    results = await trends.compare(query.survey, query.question, trends.selection(query), a, b)
    return JSONResponse(
        {
            "survey": query.survey.id,
            "metric": query.survey.kind,
            "a": f"{a[0]}..{a[1]}",
            "b": f"{b[0]}..{b[1]}",
            "groups": results,
        }
    )


async def get_loyalty_quadrant(request: Request) -> Response:
    """Contacts by their latest CSAT (satisfied or not) and latest NPS (promoter or not)."""
    await api_key(request, "analytics:read")
    limit = fields.whole_number(request.query_params.get("limit", "100"), "limit", 0, 1000)
    return JSONResponse(await insights.loyalty_quadrant(request.app.state.catalog, limit))


async def get_lifecycle(request: Request) -> Response:
    """The metric by days since the sale and by lifecycle stage: where loyalty erodes after the sale."""
    await api_key(request, "analytics:read")
    state = request.app.state
    survey = trends.parse_survey(request.query_params.get("survey"), state.catalog)
    end = fields.parse_date(request.query_params["to"], "to") if request.query_params.get("to") else today(request)
    start = (
        fields.parse_date(request.query_params["from"], "from")
        if request.query_params.get("from")
        else end - timedelta(days=365)
    )
    if start > end:
        raise BadRequest("from must not be after to.")
    return JSONResponse(await insights.lifecycle(survey, start, end))


async def get_responses_csv(request: Request) -> Response:
    """All confirmed answers as CSV, streamed in constant memory, safe to open in a spreadsheet."""
    key = await api_key(request, "responses:read")
    state = request.app.state
    options = export.parse_options(dict(request.query_params), state.catalog)
    await export.check_team(options)
    await audit.record(
        "export.responses",
        actor=audit.api_actor(key),
        target="responses",
        source=audit.source_of(request),
        details={"filters": {k: v for k, v in request.query_params.items() if k != "bom"}},
    )
    filename = f"pulse-responses-{today(request).isoformat()}.csv"
    return StreamingResponse(
        export.csv_chunks(options, state.catalog, state.settings.segment_attributes),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


ROUTES = [
    Route("/api/v1/trends", get_trends, methods=["GET"], name="api_trends"),
    Route("/api/v1/trends/compare", get_compare, methods=["GET"], name="api_trends_compare"),
    Route("/api/v1/insights/loyalty-quadrant", get_loyalty_quadrant, methods=["GET"], name="api_quadrant"),
    Route("/api/v1/insights/lifecycle", get_lifecycle, methods=["GET"], name="api_lifecycle"),
    Route("/api/v1/responses.csv", get_responses_csv, methods=["GET"], name="api_responses_csv"),
]
