"""Rendering pages for a request: the request's locale and the shared context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pulse import i18n


def request_locale(request: Request, person: str | None = None) -> str:
    """The locale of this request: ?lang= → the person's → Accept-Language → the default."""
    return i18n.negotiate(
        request.query_params.get("lang"),
        person,
        request.headers.get("accept-language"),
        request.app.state.settings.default_locale,
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    locale: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page in the request's locale."""
    state = request.app.state
    values = {
        "request": request,
        "locale": locale or request_locale(request),
        "company": state.settings.company_name,
        "dev_mail": state.settings.dev_mail_catcher,
        "timezone": state.settings.timezone,
        **(context or {}),
    }
    html = state.templates.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=headers)
