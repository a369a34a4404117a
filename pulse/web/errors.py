"""One place turns every failure into JSON for the API or a localized page for people."""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import quote

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from tortoise.exceptions import BaseORMException

from pulse import logs, storage
from pulse.errors import PulseError
from pulse.i18n import N_
from pulse.web.templating import render

log = logging.getLogger("pulse.web")

# What a person reads for each status; the API gets the exception's own sentence.
PAGE_TITLES = {
    400: N_("This request could not be understood"),
    401: N_("Please sign in"),
    403: N_("You do not have access to this page"),
    404: N_("Page not found"),
    405: N_("This action is not allowed here"),
    409: N_("This conflicts with something already stored"),
    413: N_("This request is too large"),
    415: N_("This kind of content is not accepted here"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong on our side"),
    503: N_("Pulse is temporarily unavailable"),
}
PAGE_HINTS = {
    404: N_("The address may be mistyped, or the page may have moved."),
    500: N_("The error has been logged. Please try again in a moment."),
    503: N_("Pulse cannot use its database at the moment. Please try again in a few minutes."),
}
API_MESSAGES = {404: "No such endpoint.", 405: "Method not allowed.", 500: "Internal server error."}


def wants_json(request: Request) -> bool:
    """The API and scripts that ask for JSON get JSON; people get a page."""
    if request.url.path.startswith("/api/") or request.url.path == "/healthz":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


PUBLIC_PREFIXES = ("/s/", "/l/", "/u/", "/p/")  # what customers and employees open from an e-mail


def error_response(
    request: Request,
    status: int,
    message: str,
    errors: list | None = None,
    *,
    explain: str | None = None,
    locale: str | None = None,
) -> Response:
    """JSON for the API (`message`, English), a page for people; `explain` is the sentence in the reader's
    language that says what was wrong."""
    if wants_json(request):
        return JSONResponse({"error": message, "errors": errors or []}, status_code=status)
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": PAGE_TITLES.get(status, PAGE_TITLES[400]),
            "hint": PAGE_HINTS.get(status),
            "message": explain if status < 500 else None,
            # a customer who met an error on a survey link has no business on the sign-in page
            "start_link": not request.url.path.startswith(PUBLIC_PREFIXES),
        },
        status_code=status,
        locale=locale,
    )


async def pulse_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PulseError)
    from pulse.web.signin import SignInRequired

    if isinstance(exc, SignInRequired) and not wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    from pulse.web.dashboard import NotAssigned

    if isinstance(exc, NotAssigned) and not wants_json(request):
        return exc.render()  # inside the app's frame, so the account page and signing out stay in reach
    from pulse.web.signin import user_locale

    # a signed-in person reads it in their own language (the msgid with its variables), as on their pages
    locale = user_locale(request, getattr(request.state, "user", None))
    explain = exc.localized(locale)
    return error_response(request, exc.status_code, exc.message, exc.errors, explain=explain, locale=locale)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = API_MESSAGES.get(exc.status_code, str(exc.detail))
    response = error_response(request, exc.status_code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection before its request was read (a closed tab, a load generator stopping):
    nothing was done and nobody is left to answer, so no traceback either."""
    route, _ = logs.redact(logs.secret_routes(request.app.routes), request.url.path)
    log.debug("client went away during %s %s", request.method, route)
    return Response(status_code=400)


async def server_error(request: Request, exc: Exception) -> Response:
    route, _ = logs.redact(logs.secret_routes(request.app.routes), request.url.path)  # never a link's token
    log.exception("unhandled error on %s %s", request.method, route, exc_info=exc)
    return error_response(request, 500, API_MESSAGES[500])


def _faults(request: Request) -> storage.Repeats:
    """This app's run of database faults, so that a hundred 503s in a row make one log line, not a hundred."""
    state = request.app.state
    if not hasattr(state, "storage_faults"):
        state.storage_faults = storage.Repeats(log)
    return state.storage_faults


def _unstorable_text(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if type(seen).__name__ in ("CharacterNotInRepertoireError", "UntranslatableCharacterError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def storage_error(request: Request, exc: Exception) -> Response:
    """A database that cannot store or answer is a 503 with a sentence and Retry-After, not a 500; anything else
    the driver raised (a constraint, a bug) is still a 500."""
    if _unstorable_text(exc):  # a NUL PostgreSQL cannot keep, in a field no check caught: the request's fault
        return error_response(request, 400, "The request contains a character that cannot be stored (NUL).")
    found = storage.fault(exc, request.app.state.settings.database_url)
    if found is None:
        return await server_error(request, exc)
    route, _ = logs.redact(logs.secret_routes(request.app.routes), request.url.path)
    if _faults(request).failed("web", found.kind, found.detail):  # the first of a run; then summaries
        log.warning("database fault (%s) on %s %s: answering 503", found.detail, request.method, route)
    response = error_response(request, 503, found.sentence)
    response.headers["retry-after"] = str(found.retry_after)
    return response


# Exceptions a driver raises are looked at by storage_error: BaseORMException (Tortoise's wrappers), sqlite3 and
# asyncpg errors that reach us unwrapped (a failed COMMIT, a pool that cannot connect) and OSError (a refused
# connection). Registered by class, they are answered here and not re-raised to the server as a crash.
HANDLERS = {
    PulseError: pulse_error,
    HTTPException: http_error,
    ClientDisconnect: client_gone,
    BaseORMException: storage_error,
    sqlite3.Error: storage_error,
    asyncpg.PostgresError: storage_error,
    asyncpg.InterfaceError: storage_error,
    OSError: storage_error,
    Exception: server_error,
}
