"""Who is calling: API keys for systems, CSRF tokens for forms. (Sign-in sessions come with the dashboards.)"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from pulse.accounts import find_api_key
from pulse.errors import BadRequest, Forbidden, Unauthorized
from pulse.i18n import N_
from pulse.models import ApiKey

CSRF_FIELD = "csrf_token"
API_KEY = re.compile(rf"pulse_[^_]{{1,{ApiKey._meta.fields_map['prefix'].max_length}}}_.{{1,200}}")
LAST_USED_PRECISION = timedelta(minutes=1)


async def api_key(request: Request, scope: str) -> ApiKey:
    """The API key of this request, which must carry `scope`; 401 or 403 with a sentence otherwise."""
    header = request.headers.get("authorization", "")
    kind, _, secret = header.partition(" ")
    if not header:
        raise Unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    if kind.lower() != "bearer" or not secret.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <key>'.")
    # Only what could be a key (pulse.accounts makes "pulse_<prefix>_<random>") is looked up: a longer prefix
    # would be refused by its column, and that is an invalid key, not a server error.
    key = await find_api_key(secret.strip()) if API_KEY.fullmatch(secret.strip()) else None
    if key is None:
        raise Unauthorized("This API key is not valid, or it has been revoked.")
    if scope not in key.scopes:
        raise Forbidden(f"This API key lacks the {scope} scope.")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
        await ApiKey.filter(id=key.id).update(last_used_at=now)  # at most one write a minute per key
    return key


def csrf_cookie_name(request: Request) -> str:
    # the __Host- prefix needs Secure, so it is used when Pulse is served over https
    return "__Host-pulse_csrf" if request.app.state.settings.https else "pulse_csrf"


def csrf_token(request: Request) -> str:
    """The token for this browser's forms (the cookie is set by `set_csrf_cookie`)."""
    existing = request.cookies.get(csrf_cookie_name(request), "")
    token = existing if len(existing) == 43 else secrets.token_urlsafe(32)
    request.state.csrf_token = token
    return token


def set_csrf_cookie(request: Request, response: Response) -> Response:
    token = getattr(request.state, "csrf_token", None)
    if token:
        response.set_cookie(
            csrf_cookie_name(request),
            token,
            httponly=True,
            samesite="strict",
            secure=request.app.state.settings.https,
            path="/",
        )
    return response


def check_csrf(request: Request, submitted: str | None) -> None:
    """A form post must carry the token of the cookie this site set (double submit, SameSite=Strict)."""
    cookie = request.cookies.get(csrf_cookie_name(request), "")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise BadRequest(N_("The form expired or came from another site. Reload the page and try again."))
