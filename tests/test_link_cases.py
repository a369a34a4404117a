"""Unhappy answers through a public link (anyone may post them) open a limited number of cases per team and hour;
such cases say where they came from, and the owner's e-mail quotes nothing of the visitor's but the comment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager

from pulse import i18n
from pulse.app import create_app
from pulse.models import FollowUpCase
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import make_org, make_settings, old_nonce, sent_invitation, sign_in, survey_url

PUBLIC = "From a public link: anyone who has the link can answer, so this may not be a customer."


async def post_link_answer(app, settings, team: str, comment: str, ref: str = "flyer") -> None:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        reply = await http.post(
            f"/l/csat?team={team}&ref={ref}",
            data={"score": "1", "comment": comment, "nonce": old_nonce(settings, "link:csat")},
            headers={"accept": "application/json"},
        )
    assert reply.json() == {"status": "saved", "counts": True, "score": 1}


async def test_public_link_cases_are_capped_per_team_and_hour_and_marked(database_url, catalog, smtp):
    settings = make_settings(
        database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off", PULSE_LINK_CASES_PER_HOUR="3"
    )
    assert settings.link_cases_per_hour == 3
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        org = await make_org()
        for n in range(5):
            await post_link_answer(app, settings, "support-warsaw", f"Complaint number {n}")
        assert await FollowUpCase.filter(team_id=org.warsaw.id).count() == 3
        await post_link_answer(app, settings, "support-milan", "Another team still gets its cases")
        assert await FollowUpCase.filter(team_id=org.milan.id).count() == 1
        assert {c.from_link for c in await FollowUpCase.all()} == {True}

        invitation = await sent_invitation(settings, catalog)  # a customer's own e-mail link is never capped
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            data = {"score": "1", "comment": "Invited", "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
            await http.post(survey_url(settings, invitation.id), data=data)
        invited = await FollowUpCase.get(response__invitation_id=invitation.id)
        assert invited.from_link is False

        await FollowUpCase.filter(from_link=True).update(created_at=datetime.now(UTC) - timedelta(minutes=61))
        await post_link_answer(app, settings, "support-warsaw", "An hour later", ref="ref-visitor-text-9f3")
        assert await FollowUpCase.filter(team_id=org.warsaw.id, from_link=True).count() == 4

        await Dispatcher(settings, catalog, environment()).step()
        mails = smtp.by_recipient("bob@example.com")
        assert len(mails) == 5  # three link cases, the invited one, the one an hour later
        later = next(m for m in mails if "An hour later" in m.get_body(("plain",)).get_content())
        for part in ("plain", "html"):
            body = later.get_body((part,)).get_content()
            assert i18n.translate("pl", PUBLIC) in body
            assert body.count("An hour later") == 1
            assert "ref-visitor-text-9f3" not in body  # the visitor's other input is never quoted
        assert "ref-visitor-text-9f3" not in later["Subject"]
        plain = next(m for m in mails if "Invited" in m.get_body(("plain",)).get_content())
        assert i18n.translate("pl", PUBLIC) not in plain.get_body(("plain",)).get_content()

        case = await FollowUpCase.filter(team_id=org.warsaw.id, from_link=True).order_by("-id").first()
        async with sign_in(app, "bob@example.com") as bob:
            page = await bob.get(f"/cases/{case.id}?lang=en")
            assert PUBLIC in page.text
            page = await bob.get(f"/cases/{invited.id}?lang=en")
            assert PUBLIC not in page.text
