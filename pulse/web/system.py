"""Health and the front page."""

from __future__ import annotations

from pathlib import Path

import plotly
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from pulse import health
from pulse.web.templating import render


async def healthz(request: Request) -> Response:
    """200 when the database takes a write, a worker loops and no e-mail waits too long; 503 with the reasons
    otherwise (for monitors; README "Operations" lists every field)."""
    settings = request.app.state.settings
    found = await health.report(settings)
    return JSONResponse(
        found.as_json(settings), status_code=200 if found.healthy else 503, headers={"cache-control": "no-store"}
    )


async def home(request: Request) -> Response:
    catalog = request.app.state.catalog
    return render(request, "home.html", {"surveys": list(catalog)})


PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package: no CDN, and the version always matches."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})
