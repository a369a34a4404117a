"""Employee pulses end to end, and an attacker who queries every group, filter and round the API offers and
subtracts everything from everything: no group smaller than k is ever isolated."""

from __future__ import annotations

import html
import itertools
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import engagement, i18n
from pulse.models import Employee, FlaggedAttempt, Invitation, OutboxMessage, PulseAnswer, PulseRound, Response, Team
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import make_key, old_nonce, pulse_link, sign_in


async def roster(org, sizes: dict[str, list[str]]) -> None:
    """sizes: team slug -> one location per member."""
    number = itertools.count(1)
    for slug, locations in sizes.items():
        team = await Team.get(slug=slug)
        for location in locations:
            n = next(number)
            await Employee.create(
                external_id=f"E{n}",
                email=f"e{n}@example.com",
                name=f"Employee {n}",
                team=team,
                locale="sl",
                timezone="Europe/Ljubljana",
                attributes={"location": location, "role_family": "Support"},
            )


async def answer_all(client, settings, pulse_round, comment="fine"):
    for invitation in await Invitation.filter(round_id=pulse_round.id):
        url, subject = pulse_link(settings, invitation.id)
        data = {f"q_{q}": "8" for q in pulse_round.questions} | {
            "c_recommend_workplace": comment,
            "nonce": old_nonce(settings, subject),
        }
        assert (await client.post(url, data=data)).status_code == 200


async def test_a_round_opens_invites_reminds_and_closes(mail_client, mail_settings, catalog, org, smtp):
    await roster(org, {"support-warsaw": ["Warsaw"] * 6})
    await Employee.filter(external_id="E6").update(active=False)  # a leaver is never surveyed again
    survey = engagement.programme(catalog)
    now = datetime.now(UTC)
    assert await engagement.run_schedule(catalog, mail_settings, now=now) == 1
    [pulse_round] = await PulseRound.all()
    assert pulse_round.questions[0] == "recommend_workplace" and len(pulse_round.questions) == 4
    assert await Invitation.filter(round_id=pulse_round.id).count() == 5
    await Dispatcher(mail_settings, catalog, environment()).step()
    [mail] = smtp.by_recipient("e1@example.com")
    link = re.search(r"http://testserver(/p/[^\s\"<]+)", mail.get_body(("plain",)).get_content()).group(1)
    page = await mail_client.get(link)
    assert page.status_code == 200 and '<html lang="sl">' in page.text
    assert page.text.count('type="radio"') == 11 * 4
    for line in (  # the lines on what is and is not visible
        i18n.translate_plural(
            "sl",
            "Managers and HR see results only for groups of at least %(num)s person.",
            "Managers and HR see results only for groups of at least %(num)s people.",
            5,
        ),
        i18n.translate_plural(
            "sl",
            "They see comments only from groups of at least %(num)s person.",
            "They see comments only from groups of at least %(num)s people.",
            10,
        ),
    ):
        assert html.escape(line, quote=False) in page.text
    invitation = await Invitation.get(employee__external_id="E1")
    data = {f"q_{q}": "9" for q in pulse_round.questions} | {
        "c_recommend_workplace": "Good team",
        "nonce": old_nonce(mail_settings, pulse_link(mail_settings, invitation.id)[1]),
    }
    assert (await mail_client.post(link, data=data)).status_code == 200
    stored = await PulseAnswer.filter(round_id=pulse_round.id)
    assert len(stored) == 4
    assert stored[0].dimensions == {"location": "Warsaw", "role_family": "Support"}
    assert await Response.all().count() == 0  # nothing of it where customers' answers are listed
    assert (await Invitation.get(id=invitation.id)).status == "answered"
    again = await mail_client.post(link, data=data)
    assert await PulseAnswer.filter(round_id=pulse_round.id).count() == 4
    already = i18n.translate(
        "sl", "This pulse was already answered with this link. Each person answers once per round."
    )
    assert again.status_code == 200 and already in again.text
    # one reminder, to those who have not answered, before the round closes
    await engagement.run_schedule(catalog, mail_settings, now=now + timedelta(days=survey.schedule.reminder_after_days))
    assert await OutboxMessage.filter(kind="pulse_reminder").count() == 4
    await engagement.run_schedule(
        catalog, mail_settings, now=now + timedelta(days=survey.schedule.reminder_after_days, hours=1)
    )
    assert await OutboxMessage.filter(kind="pulse_reminder").count() == 4
    await engagement.run_schedule(catalog, mail_settings, now=now + timedelta(days=survey.schedule.open_days))
    assert (await PulseRound.get(id=pulse_round.id)).status == "closed"
    assert await Invitation.filter(round_id=pulse_round.id, status="expired").count() == 4
    closed = await mail_client.post(link, data=data)
    assert closed.status_code == 410


async def test_too_fast_and_honeypot_answers_are_not_counted(mail_client, mail_settings, catalog, org):
    await roster(org, {"support-warsaw": ["Warsaw"] * 2})
    await engagement.run_schedule(catalog, mail_settings)
    [pulse_round] = await PulseRound.all()
    first, second = await Invitation.filter(round_id=pulse_round.id).order_by("id")
    for invitation, extra in ((first, {"website": "spam"}), (second, {})):
        url, subject = pulse_link(mail_settings, invitation.id)
        nonce = old_nonce(mail_settings, subject, 0 if not extra else 2)
        data = {f"q_{q}": "5" for q in pulse_round.questions} | {"nonce": nonce} | extra
        assert (await mail_client.post(url, data=data)).status_code == 200
    assert await PulseAnswer.filter(round_id=pulse_round.id).count() == 0
    assert await FlaggedAttempt.filter(invitation_id__isnull=False).count() == 0  # never which invitation


ADVERSARIAL = {
    "customer-care": ["Warsaw"] * 2,  # people in the parent team itself
    "support-warsaw": ["Warsaw"] * 5 + ["Milan"],  # a team of 6 with one person elsewhere
    "support-milan": ["Milan"] * 3,  # a team below k
}


@pytest.mark.parametrize("k", [5, 3])
async def test_the_attacker_never_isolates_fewer_than_k(mail_app, mail_settings, catalog, org, k):
    mail_app.state.settings = settings = mail_settings.replace(anonymity_min_group=k)
    for extra in range(12):  # a larger sibling so that the tree has something to show
        ADVERSARIAL.setdefault("support-rome", []).append("Rome") if extra < 9 else None
    await Team.create(slug="support-rome", name="Support Rome", parent=org.care)
    await roster(org, ADVERSARIAL)
    key = {"authorization": f"Bearer {await make_key('engagement:read')}"}
    survey = engagement.programme(catalog)
    now = datetime.now(UTC)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        for number in range(2):  # two rounds, with different people answering
            moment = now + timedelta(days=number * survey.schedule.every_days)
            await engagement.run_schedule(catalog, settings, now=moment)
            pulse_round = await PulseRound.get(number=number + 1)
            if number == 1:
                await Invitation.filter(round_id=pulse_round.id, employee__external_id="E3").update(status="expired")
            await answer_all(client, settings, pulse_round)
            await engagement.run_schedule(catalog, settings, now=moment + timedelta(days=survey.schedule.open_days))
        shown: dict[tuple, int] = {}
        for number in (1, 2):
            rounds = (await client.get("/api/v1/engagement/rounds", headers=key)).json()["rounds"]
            questions = next(r["questions"] for r in rounds if r["number"] == number)
            for question, by in itertools.product(questions, ("team", "location", "role_family", "tenure")):
                reply = await client.get(
                    f"/api/v1/engagement/results?round={number}&question={question}&by={by}", headers=key
                )
                assert reply.status_code == 200
                for group in reply.json()["groups"]:
                    if not group["suppressed"]:
                        assert group["n"] >= k
                        shown[(number, question, by, group["group"])] = group["n"]
                    else:
                        assert set(group) == {"group", "suppressed"}  # no count, no value
        # every subtraction the attacker can make: a whole minus any set of its shown parts
        structure = {
            "team": {
                "company": ["customer-care", "sales"],
                "customer-care": ["support-warsaw", "support-milan", "support-rome"],
            },
            "location": {"company": ["Warsaw", "Milan", "Rome"]},
        }
        for (number, question, by, group), n in shown.items():
            for whole, parts in structure.get(by, {}).items():
                if group != whole:
                    continue
                visible = [shown[(number, question, by, p)] for p in parts if (number, question, by, p) in shown]
                for size in range(len(visible) + 1):
                    for subset in itertools.combinations(visible, size):
                        remainder = n - sum(subset)
                        assert remainder == 0 or remainder >= k, (number, question, by, whole, subset)
        # across rounds: the same team in two rounds is two different sets of people; nothing is rolling
        # comments: only for visible groups of at least the comment threshold (10)
        for group in ("company", "team:support-warsaw", "team:support-milan", "team:customer-care"):
            reply = (await client.get(f"/api/v1/engagement/comments?round=1&group={group}", headers=key)).json()
            n = shown.get((1, "recommend_workplace", "team", group.split(":")[-1]))
            assert reply["suppressed"] == (n is None or n < settings.anonymity_min_comments), (group, n)
    assert shown, "the attacker saw some numbers: the test did query something"


async def test_hr_sees_the_engagement_page_and_open_rounds_show_nothing(mail_app, mail_settings, catalog, org):
    await roster(org, {"support-warsaw": ["Warsaw"] * 6})
    await engagement.run_schedule(catalog, mail_settings)
    key = {"authorization": f"Bearer {await make_key('engagement:read')}"}
    async with sign_in(mail_app, "hana@example.com") as hana:
        page = await hana.get("/engagement")
        assert page.status_code == 200  # no closed round yet: an empty state, no numbers
        api = await hana.get("/api/v1/engagement/results", headers=key)
        assert api.status_code == 404


async def test_analysts_see_engagement_numbers_but_not_employee_comments(mail_app, mail_settings, catalog, org):
    await roster(org, {"support-warsaw": ["Warsaw"] * 12})
    survey = engagement.programme(catalog)
    now = datetime.now(UTC)
    await engagement.run_schedule(catalog, mail_settings, now=now)
    pulse_round = await PulseRound.get(number=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        await answer_all(client, mail_settings, pulse_round, comment="Secret <b>feedback</b>")
    await engagement.run_schedule(catalog, mail_settings, now=now + timedelta(days=survey.schedule.open_days))
    async with sign_in(mail_app, "hana@example.com") as hana:
        assert "Secret &lt;b&gt;feedback&lt;/b&gt;" in (await hana.get("/engagement")).text  # HR: yes, escaped
    async with sign_in(mail_app, "ana@example.com") as ana:
        page = await ana.get("/engagement")
        assert page.status_code == 200 and "Secret" not in page.text  # analyst: numbers only
