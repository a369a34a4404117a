"""The development mail catcher receives real SMTP and shows the messages at /dev/mail."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import httpx
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from tests.conftest import free_port, make_settings


async def test_caught_mail_is_listed_and_shown_safely(database_url, catalog):
    port = free_port()
    settings = make_settings(database_url, PULSE_DEV_MAIL_CATCHER="true", PULSE_DEV_MAIL_CATCHER_PORT=str(port))
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        message = EmailMessage()
        message["From"] = "pulse@example.com"
        message["To"] = "anna@example.com"
        message["Subject"] = "Jak oceniłaby Pani naszą obsługę?"
        message.set_content("Plain text body")
        message.add_alternative("<p>HTML <b>body</b><script>alert(1)</script></p>", subtype="html")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
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
