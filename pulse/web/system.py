"""Health and the front page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pulse import db
from pulse.web.templating import render


async def healthz(request: Request) -> Response:
    """200 when Pulse and its database answer, 503 otherwise (for load balancers and monitors)."""
    if await db.database_ok():
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "unavailable", "database": "unavailable"}, status_code=503)


async def home(request: Request) -> Response:
    catalog = request.app.state.catalog
    return render(request, "home.html", {"surveys": list(catalog)})
