"""The loyalty page is cached per process, yet every process shows an answer on the next request after it lands,
whichever process (or worker) stored it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from pulse import loyalty, responses
from pulse.models import Contact, Invitation, Response
from tests.conftest import old_nonce, sign_in, survey_url
from tests.processes import serving
from tests.test_loyalty_list import names, satisfied_not_loyal


async def test_both_processes_show_each_answer_on_the_next_request(
    mail_app, mail_settings, catalog, org, tmp_path: Path
):
    await satisfied_not_loyal(org.warsaw, 2)
    async with sign_in(mail_app, "alice@example.com") as local:
        cookies = {cookie.name: cookie.value for cookie in local.cookies.jar}
        with serving(mail_settings, tmp_path / "server.log") as base:
            async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30) as remote:

                async def shown() -> list[int]:
                    """How many satisfied-but-not-loyal customers each process lists."""
                    return [len(names((await c.get("/dashboard/loyalty")).text)) for c in (local, remote)]

                assert await shown() == [2, 2]
                await satisfied_not_loyal(org.warsaw, 1, first=3)  # a new customer's answers land
                assert await shown() == [3, 3]

                # a customer changes their NPS to 10 through the other process: loyal now
                nps = await Invitation.get(survey_id="nps", contact__external_id="L-0001")
                nonce = old_nonce(mail_settings, f"invitation:{nps.id}")
                data = {"score": "10", "comment": "Better now", "nonce": nonce}
                assert (await remote.post(survey_url(mail_settings, nps.id), data=data)).status_code == 200
                assert await shown() == [2, 2]

                # an answer without a comment counts once the worker confirms it, a few seconds later
                contact = await Contact.create(external_id="L-0009", name="Settling", email="l9@x.io")
                nps = await Invitation.create(survey_id="nps", contact=contact, locale="en", status="answered")
                settled_nps = await Response.create(
                    survey_id="nps", invitation=nps, question_id="recommend", score=6, locale="en",
                    answered_at=datetime.now(UTC), day=datetime.now(UTC).date(), confirmed=True, team=org.warsaw,
                )  # fmt: skip
                await loyalty.record(settled_nps)
                csat = await Invitation.create(survey_id="csat", contact=contact, locale="en", status="sent")
                data = {"score": "5", "nonce": old_nonce(mail_settings, f"invitation:{csat.id}")}
                assert (await remote.post(survey_url(mail_settings, csat.id), data=data)).status_code == 200
                assert await shown() == [2, 2]
                settled = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
                assert await responses.confirm_due(catalog, mail_settings, now=settled) == 1
                assert await shown() == [3, 3]
