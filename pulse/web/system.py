"""Health and the front page."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from pulse import health


async def livez(request: Request) -> Response:
    """200 while this web process answers and reaches its database, 503 otherwise; nothing about workers or
    e-mail, so a load balancer keeps every web process in its pool while delivery is stuck (README "Health
    checks")."""
    fault = await health.reachable(request.app.state.settings)
    body = {"status": "ok"} if fault is None else {"status": "unavailable", "problems": [fault.sentence]}
    return JSONResponse(body, status_code=200 if fault is None else 503, headers={"cache-control": "no-store"})


async def healthz(request: Request) -> Response:
    """200 when the database takes a write, a worker loops and no e-mail waits too long; 503 with the reasons
    otherwise (for monitors; README "Operations" lists every field)."""
    settings = request.app.state.settings
    found = await health.report(settings)
    return JSONResponse(
        found.as_json(settings), status_code=200 if found.healthy else 503, headers={"cache-control": "no-store"}
    )


async def home(request: Request) -> Response:
    """A visitor who is not signed in goes to the sign-in, in the language they asked for."""
    lang = request.query_params.get("lang")
    return RedirectResponse(f"/login?{urlencode({'lang': lang})}" if lang else "/login", status_code=303)
