"""Pages for people without an account: unsubscribe (survey answer pages join them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from pulse import i18n, tokens
from pulse.errors import NotFound
from pulse.models import Contact, Invitation
from pulse.outbox import suppress_scheduled
from pulse.web.auth import CSRF_FIELD, check_csrf, csrf_token, set_csrf_cookie
from pulse.web.templating import render

# An unsubscribe link must keep working long after the survey closes (RFC 8058 senders are judged on it).
UNSUBSCRIBE_MAX_AGE = timedelta(days=365)
ONE_CLICK = b"List-Unsubscribe=One-Click"


async def _invitation(request: Request, purpose: str, max_age: timedelta) -> tuple[Invitation | None, bool]:
    """The invitation a link's token names, and whether the token has expired; unknown → 404 page."""
    secret = request.app.state.settings.secret_key
    try:
        invitation_id = tokens.read_token(secret, purpose, request.path_params["token"], int(max_age.total_seconds()))
    except tokens.TokenInvalid:
        raise NotFound("This link is not valid.") from None
    except tokens.TokenExpired as expired:
        found = await Invitation.get_or_none(id=expired.invitation_id) if expired.invitation_id else None
        return found, True
    invitation = await Invitation.get_or_none(id=invitation_id).select_related("contact")
    if invitation is None or invitation.contact is None:
        raise NotFound("This link is not valid.")
    return invitation, False


def _locale(request: Request, invitation: Invitation | None) -> str:
    settings = request.app.state.settings
    return i18n.negotiate(
        request.query_params.get("lang"),
        invitation.locale if invitation else None,
        request.headers.get("accept-language"),
        settings.default_locale,
    )


async def unsubscribe(request: Request) -> Response:
    """GET shows a confirm button and changes nothing; POST (the button, or RFC 8058 one-click) opts out."""
    invitation, expired = await _invitation(request, "unsubscribe", UNSUBSCRIBE_MAX_AGE)
    locale = _locale(request, invitation)
    if expired or invitation is None:
        return render(request, "public/link_expired.html", {}, status_code=410, locale=locale)
    contact: Contact = invitation.contact
    if request.method == "POST":
        body = await request.body()
        if body.strip() != ONE_CLICK:
            form = await request.form()
            check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        async with in_transaction():
            if contact.opted_out_at is None:
                await Contact.filter(id=contact.id, opted_out_at=None).update(opted_out_at=datetime.now(UTC))
            await suppress_scheduled(contact.id, "the contact opted out")
        return render(request, "public/unsubscribed.html", {}, locale=locale)
    context = {"already": contact.opted_out_at is not None, "csrf_token": csrf_token(request)}
    return set_csrf_cookie(request, render(request, "public/unsubscribe.html", context, locale=locale))


ROUTES = [
    Route("/u/{token}", unsubscribe, methods=["GET", "POST"], name="unsubscribe"),
]
