"""Rendering pages for a request: the request's locale, the language cookie and the shared context."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pulse import i18n

LANGUAGE_COOKIE = "pulse_lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
# the filters every dashboard page shares: the main navigation carries them from page to page
SHARED_FILTERS = ("team", "window", "interval", "from", "to")


def request_locale(request: Request, person: str | None = None) -> str:
    """The locale of this request: ?lang= → the language cookie → the person's → Accept-Language → the default."""
    explicit = i18n.supported(request.query_params.get("lang")) or i18n.supported(request.cookies.get(LANGUAGE_COOKIE))
    return i18n.negotiate(
        explicit,
        person,
        request.headers.get("accept-language"),
        request.app.state.settings.default_locale,
    )


def with_query(request: Request, path: str = "", keep: Iterable[str] | None = None, **changes: object) -> str:
    """This page's query string with `changes` (None or "" drops a parameter), optionally only the `keep` names,
    after `path`: how a link keeps the filters of the page it is on. Jinja's autoescape makes it safe in href."""
    kept = set(keep) if keep is not None else None
    params = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if value != "" and name not in changes and (kept is None or name in kept)
    ]
    params += [(name, str(value)) for name, value in changes.items() if value not in (None, "")]
    query = urlencode(params)
    return f"{path}?{query}" if query else (path or "?")


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    locale: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page in the request's locale; a language chosen with ?lang= is remembered in a cookie."""
    state = request.app.state
    values = {
        "request": request,
        "locale": locale or request_locale(request),
        "company": state.settings.company_name,
        "dev_mail": state.settings.dev_mail_catcher,
        "timezone": state.settings.timezone,
        "with_query": functools.partial(with_query, request),
        "SHARED_FILTERS": SHARED_FILTERS,
        **(context or {}),
    }
    html = state.templates.get_template(template).render(values)
    return respond(request, html, status_code=status_code, headers=headers)


def respond(
    request: Request, html: str, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A rendered page as the response; a language chosen with ?lang= is remembered in a cookie."""
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    if chosen := i18n.supported(request.query_params.get("lang")):
        # read by the pages for people without an account (answer, pulse, unsubscribe, sign-in); HttpOnly, as
        # no script needs it
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=LANGUAGE_COOKIE_SECONDS,
            path="/",
            secure=request.app.state.settings.https,
            httponly=True,
            samesite="lax",
        )
    return response
