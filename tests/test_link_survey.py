"""Public survey links (QR codes, chats): the same human-signal rules, dimensions from the URL, a rate limit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pulse import responses
from pulse.models import FlaggedAttempt, Response
from pulse.ratelimit import RateLimiter
from tests.conftest import old_nonce


async def test_a_link_page_records_nothing_until_a_human_posts(mail_client, mail_settings, catalog, org):
    page = await mail_client.get("/l/csat?ref=receipt-42&team=support-warsaw&score=5&lang=it")
    assert page.status_code == 200
    assert '<html lang="it">' in page.text
    assert await Response.all().count() == 0
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    assert (
        await mail_client.post("/l/csat?ref=receipt-42&team=support-warsaw", data={"score": "5", "nonce": nonce})
    ).status_code == 200
    assert await Response.all().count() == 0  # posted within a second of rendering: a script
    assert await FlaggedAttempt.filter(reason="too_fast").count() == 1
    nonce = old_nonce(mail_settings, "link:csat")
    for score in ("4", "4"):  # the same page posting twice is one answer
        await mail_client.post("/l/csat?ref=receipt-42&team=support-warsaw", data={"score": score, "nonce": nonce})
    [response] = await Response.all()
    assert (response.score, response.team_id, response.invitation_id) == (4, org.warsaw.id, None)
    assert response.dimensions == {"channel": "link", "ref": "receipt-42"}
    await responses.confirm_due(catalog, mail_settings, now=datetime.now(UTC) + timedelta(seconds=5))
    assert (await Response.get(id=response.id)).confirmed


async def test_unknown_and_employee_surveys_have_no_public_link(mail_client):
    assert (await mail_client.get("/l/nope")).status_code == 404
    assert (await mail_client.get("/l/enps")).status_code == 404  # employee pulses are never anonymous-public


async def test_a_client_posting_too_often_is_told_to_wait(mail_client, mail_settings, mail_app):
    mail_app.state.link_limiter = RateLimiter(3, mail_settings.secret_key)
    codes = []
    for _ in range(5):
        reply = await mail_client.post("/l/csat", data={"score": "5", "nonce": old_nonce(mail_settings, "link:csat")})
        codes.append(reply.status_code)
    assert codes == [200, 200, 200, 429, 429]
    assert (await mail_client.post("/l/csat", data={"score": "5"}, headers={"accept": "application/json"})).json() == {
        "error": "Too many answers from this address. Please wait a minute.",
        "errors": [],
    }
