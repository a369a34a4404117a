"""The inbox of the development mail catcher at /dev/mail (only when PULSE_DEV_MAIL_CATCHER is on), for admins:
it holds every e-mail Pulse sent, password-reset and survey links included."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from pulse import access
from pulse.errors import NotFound
from pulse.web.signin import signed_in
from pulse.web.templating import render

# A caught e-mail is shown as the mail client would: its own styles, no scripts, no network.
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"


async def _admin(request: Request) -> None:
    """Not signed in: off to the sign-in page (and back); signed in without the admin role: 403."""
    access.require(await signed_in(request), "admin")


async def _mail(request: Request):
    await _admin(request)
    try:
        mail_id = int(request.path_params["mail_id"])
    except ValueError:
        raise NotFound("No such message.") from None
    mail = request.app.state.mail_catcher.get(mail_id)
    if mail is None:
        raise NotFound("No such message.")
    return mail


async def inbox(request: Request) -> Response:
    await _admin(request)
    return render(request, "devmail/inbox.html", {"mails": request.app.state.mail_catcher.mails()})


async def message(request: Request) -> Response:
    mail = await _mail(request)
    return render(request, "devmail/message.html", {"mail": mail, "text": mail.part("plain")})


async def message_html(request: Request) -> Response:
    html = (await _mail(request)).part("html")
    if html is None:
        raise NotFound("This message has no HTML part.")
    return HTMLResponse(html, headers={"content-security-policy": MAIL_CSP, "x-frame-options": "SAMEORIGIN"})


async def message_raw(request: Request) -> Response:
    return PlainTextResponse((await _mail(request)).raw.decode("utf-8", "replace"))


ROUTES = [
    Route("/dev/mail", inbox, name="devmail_inbox"),
    Route("/dev/mail/{mail_id}", message, name="devmail_message"),
    Route("/dev/mail/{mail_id}/html", message_html, name="devmail_html"),
    Route("/dev/mail/{mail_id}/raw", message_raw, name="devmail_raw"),
]
