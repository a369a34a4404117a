"""Signing in and out, password resets, and the current user of a request."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from pulse import audit, fields, i18n, sessions
from pulse.errors import BadRequest, PulseError, Unauthorized
from pulse.models import OutboxMessage, User
from pulse.touchpoints import mail_domain
from pulse.web.auth import CSRF_FIELD, check_csrf, csrf_token, set_csrf_cookie
from pulse.web.templating import render, request_locale

RESET_REPLY_SECONDS = 0.2  # every reset request is answered after this long, known address or not


def cookie_name(request: Request) -> str:
    # __Host- needs Secure and Path=/: it cannot be set by a subdomain or over plain http
    return "__Host-pulse_session" if request.app.state.settings.https else "pulse_session"


async def current_user(request: Request) -> User | None:
    """The signed-in user of this request, or None (looked up once per request)."""
    if not hasattr(request.state, "user"):
        token = request.cookies.get(cookie_name(request))
        request.state.user = await sessions.resume(token, request.app.state.settings.session_hours)
    return request.state.user


class SignInRequired(PulseError):
    """Raised for a page that needs a user; the handler sends people to the sign-in page."""

    status_code = 401


async def signed_in(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise SignInRequired("Please sign in.")
    return user


def user_locale(request: Request, user: User | None) -> str:
    """A signed-in user's locale: ?lang= → their setting (it wins over a cookie another person may have left)."""
    if user is None:
        return request_locale(request)
    return i18n.negotiate(
        request.query_params.get("lang"),
        user.locale,
        request.headers.get("accept-language"),
        request.app.state.settings.default_locale,
    )


async def remember_locale(request: Request, user: User) -> None:
    """A language chosen with ?lang= (the language links) becomes the user's setting, on every device.

    A plain GET may do this: it changes only how the user's own pages are worded, not what anyone may see or do,
    so a forged link can do no more than the user's own click on a language link would.
    """
    chosen = i18n.supported(request.query_params.get("lang"))
    if request.method == "GET" and chosen and chosen != user.locale:
        await User.filter(id=user.id).update(locale=chosen)
        user.locale = chosen


def home_for(user: User) -> str:
    return "/engagement" if user.role == "hr" else "/dashboard"


def safe_next(target: str | None) -> str | None:
    """Only a path on this site (no scheme, no host, no backslashes) may be a redirect target."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_page(request: Request) -> Response:
    locale = request_locale(request)
    if request.method == "GET":
        if user := await current_user(request):
            return RedirectResponse(home_for(user), status_code=303)
        context = {
            "csrf_token": csrf_token(request),
            "next": safe_next(request.query_params.get("next")) or "",
            "email": "",
            "error": None,
        }
        return set_csrf_cookie(request, render(request, "signin/login.html", context, locale=locale))
    form = await request.form()
    check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    email = str(form.get("email") or "").strip()
    if len(email) > 254 or fields.unstorable(email):
        email = ""  # no account has such an address: it is simply not right
    password = str(form.get("password") or "")
    next_page = safe_next(str(form.get("next") or ""))
    context = {"csrf_token": csrf_token(request), "next": next_page or "", "email": email}
    source = audit.source_of(request)
    try:
        user = await sessions.authenticate(email, password, client(request), request.app.state.settings.secret_key)
    except PulseError as refused:
        # the e-mail as typed names who tried; the password never goes anywhere
        await audit.record("signin.failed", actor=email, source=source, details={"reason": "throttled"})
        context["error"] = i18n.translate(locale, "Too many failed sign-ins. Wait 15 minutes and try again.")
        return set_csrf_cookie(
            request, render(request, "signin/login.html", context, locale=locale, status_code=refused.status_code)
        )
    if user is None:
        await audit.record("signin.failed", actor=email, source=source, details={"reason": "wrong e-mail or password"})
        context["error"] = i18n.translate(locale, "The e-mail or the password is not right.")
        return set_csrf_cookie(request, render(request, "signin/login.html", context, locale=locale, status_code=400))
    old = request.cookies.get(cookie_name(request))
    await sessions.end(old)  # a fresh session id at every sign-in: nothing fixed in advance survives
    async with in_transaction():
        token = await sessions.start(
            user, request.app.state.settings.session_hours, client(request), request.headers.get("user-agent", "")
        )
        await audit.record("signin.ok", actor=user.email, target=f"user {user.email}", source=source)
    response = RedirectResponse(next_page or home_for(user), status_code=303)
    response.set_cookie(
        cookie_name(request), token, httponly=True, samesite="lax", path="/", secure=request.app.state.settings.https
    )
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    user = await current_user(request)
    everywhere = bool(user is not None and form.get("everywhere"))
    async with in_transaction():
        if user is not None and everywhere:
            await sessions.end_all(user)
        else:
            await sessions.end(request.cookies.get(cookie_name(request)))
        if user is not None:
            await audit.record(
                "signout",
                actor=user.email,
                target=f"user {user.email}",
                source=audit.source_of(request),
                details={"everywhere": everywhere},
            )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        cookie_name(request), path="/", secure=request.app.state.settings.https, httponly=True, samesite="lax"
    )
    return response


async def reset_request(request: Request) -> Response:
    """Ask for a reset link: the answer is the same whether the address is known or not, and so is its timing."""
    locale = request_locale(request)
    context = {"csrf_token": csrf_token(request), "sent": False}
    if request.method == "POST":
        started = time.monotonic()
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        email = str(form.get("email") or "").strip().lower()
        if len(email) > 254 or fields.unstorable(email):
            email = ""  # no account has such an address
        user = await User.get_or_none(email=email, is_active=True)
        # asked for unknown addresses too, as typed: the same write either way, and a trail of guesses
        await audit.record(
            "password.reset_requested",
            actor=email,
            target=f"user {user.email}" if user else "",
            source=audit.source_of(request),
        )
        now = datetime.now(UTC)
        minute = now.replace(second=0, microsecond=0)
        recent = await OutboxMessage.filter(  # asked for unknown addresses too: the same reads either way
            kind="password_reset", to_email=user.email if user else email, created_at__gte=minute
        ).exists()
        if user is not None and not recent:
            await OutboxMessage.create(
                kind="password_reset",
                to_email=user.email,
                locale=user.locale,
                payload={"user_id": user.id},
                status="pending",
                next_attempt_at=now,
                message_id=f"<reset-{user.id}.{int(now.timestamp())}@{mail_domain(request.app.state.settings.mail_from)}>",
            )
        context["sent"] = True
        # only a known address writes to the outbox (and waits for the commit): every reply waits for the same
        # floor, well above what that write takes, so the time of the answer does not tell who has an account
        await asyncio.sleep(max(0.0, RESET_REPLY_SECONDS - (time.monotonic() - started)))
    return set_csrf_cookie(request, render(request, "signin/reset_request.html", context, locale=locale))


async def reset_password(request: Request) -> Response:
    locale = request_locale(request)
    secret = request.app.state.settings.secret_key
    token = request.path_params["token"]
    try:
        user = await sessions.reset_user(secret, token)
    except BadRequest as invalid:
        return render(
            request,
            "signin/reset_password.html",
            {"invalid": invalid.localized(locale), "csrf_token": ""},
            locale=locale,
            status_code=400,
        )
    context = {"csrf_token": csrf_token(request), "invalid": None, "error": None}
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        password = str(form.get("password") or "")
        if password != str(form.get("password_again") or ""):
            context["error"] = i18n.translate(locale, "The two passwords differ.")
        else:
            try:
                await sessions.set_password(user, password)
            except BadRequest as refused:
                context["error"] = refused.localized(locale)
            else:
                # after, not around it: the password hash takes a while, and a transaction must not wait on it
                await audit.record(
                    "password.reset", actor=user.email, target=f"user {user.email}", source=audit.source_of(request)
                )
                return RedirectResponse("/login?reset=1", status_code=303)
        return set_csrf_cookie(
            request, render(request, "signin/reset_password.html", context, locale=locale, status_code=400)
        )
    return set_csrf_cookie(request, render(request, "signin/reset_password.html", context, locale=locale))


ROUTES = [
    Route("/login", login_page, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/password-reset", reset_request, methods=["GET", "POST"], name="password_reset"),
    Route("/password-reset/{token}", reset_password, methods=["GET", "POST"], name="password_reset_token"),
]

__all__ = ["ROUTES", "SignInRequired", "Unauthorized", "current_user", "remember_locale", "signed_in", "user_locale"]
