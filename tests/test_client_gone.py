"""A client that closes the connection before its form is read (a closed tab, a load generator stopping) is not a
server error: nothing is stored, nothing is logged as a failure, and the server goes on."""

from __future__ import annotations

import logging

from pulse.models import FlaggedAttempt, Response
from tests.conftest import sent_invitation, survey_url


async def test_a_post_whose_client_went_away_is_not_a_server_error(mail_client, mail_settings, catalog, caplog):
    invitation = await sent_invitation(mail_settings, catalog)
    app = mail_client._transport.app  # type: ignore[attr-defined]
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}  # the body never comes

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": survey_url(mail_settings, invitation.id), "raw_path": b"", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", b"60")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)  # raises nothing to the server
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [400]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert await Response.all().count() == 0
    assert await FlaggedAttempt.all().count() == 0
    page = await mail_client.get(survey_url(mail_settings, invitation.id))  # and the server goes on
    assert page.status_code == 200
