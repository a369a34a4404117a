"""The development mail catcher receives real SMTP and shows the messages at /dev/mail, to an admin only."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import httpx
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from tests.conftest import free_port, make_org, make_settings, sign_in

PAGES = ("/dev/mail", "/dev/mail/1", "/dev/mail/1/html", "/dev/mail/1/raw")


async def test_caught_mail_is_listed_and_shown_safely(database_url, catalog):
    port = free_port()
    settings = make_settings(database_url, PULSE_DEV_MAIL_CATCHER="true", PULSE_DEV_MAIL_CATCHER_PORT=str(port))
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await make_org()
        message = EmailMessage()
        message["From"] = "pulse@example.com"
        message["To"] = "anna@example.com"
        message["Subject"] = "Jak oceniłaby Pani naszą obsługę?"
        message.set_content("Plain text body")
        message.add_alternative("<p>HTML <b>body</b><script>alert(1)</script></p>", subtype="html")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
        async with sign_in(app, "alice@example.com") as http:
            inbox = await http.get("/dev/mail")
            assert "Jak oceniłaby Pani naszą obsługę?" in inbox.text
            assert "anna@example.com" in inbox.text
            shown = await http.get("/dev/mail/1")
            assert "Plain text body" in shown.text
            html = await http.get("/dev/mail/1/html")
            assert "<b>body</b>" in html.text
            assert "sandbox" in html.headers["content-security-policy"]
            assert "script-src" not in html.headers["content-security-policy"]  # default-src 'none' blocks it
            raw = await http.get("/dev/mail/1/raw")
            assert raw.headers["content-type"].startswith("text/plain")
            assert "Subject:" in raw.text
            assert (await http.get("/dev/mail/99")).status_code == 404
            assert (await http.get("/dev/mail/abc")).status_code == 404


async def test_dev_mail_is_off_by_default(client: httpx.AsyncClient):
    assert (await client.get("/dev/mail")).status_code == 404


async def test_the_inbox_needs_an_admin_session(database_url, catalog):
    port = free_port()
    settings = make_settings(database_url, PULSE_DEV_MAIL_CATCHER="true", PULSE_DEV_MAIL_CATCHER_PORT=str(port))
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await make_org()
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "pulse@example.com", "anna@example.com", "A reset link"
        message.set_content("http://testserver/password-reset/secret-token")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            for path in PAGES:
                reply = await http.get(path)
                assert (reply.status_code, reply.headers.get("location")) == (303, f"/login?next={path}"), path
                assert "secret-token" not in reply.text
        async with sign_in(app, "bob@example.com") as manager:
            for path in PAGES:
                reply = await manager.get(path)
                assert reply.status_code == 403, path
                assert "secret-token" not in reply.text
        async with sign_in(app, "alice@example.com") as admin:
            assert "A reset link" in (await admin.get("/dev/mail")).text
            assert "secret-token" in (await admin.get("/dev/mail/1/raw")).text
