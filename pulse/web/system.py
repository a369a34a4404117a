"""Health and the front page."""

from __future__ import annotations

from pathlib import Path

import plotly
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

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


PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package: no CDN, and the version always matches."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})
