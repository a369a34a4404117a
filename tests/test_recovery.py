"""Recovery after a case: one follow-up question when a case is resolved (never twice, never to someone who must
not be asked, under the fatigue window), and the per-team report on the cases page and in the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import followups, i18n, mail, recovery, rules
from pulse.models import Contact, FollowUpCase, Invitation, OutboxMessage, Response
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import make_key, old_nonce, sent_invitation, sign_in, survey_url


async def answer(app, settings, invitation_id: int, score: int, comment: str = "It took a week") -> None:
    """Answer an e-mailed invitation through its page, as a person does (a comment confirms it at once)."""
    data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation_id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.post(
            survey_url(settings, invitation_id), data=data, headers={"accept": "application/json"}
        )
    assert reply.status_code == 200, reply.text


async def unhappy_case(app, settings, catalog, number: int = 1, **changes) -> FollowUpCase:
    invitation = await sent_invitation(settings, catalog, number, **changes)
    await answer(app, settings, invitation.id, 1)
    return await FollowUpCase.get(response__invitation_id=invitation.id)


async def csrf(client, path: str) -> str:
    page = await client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def resolve_on_the_page(app, case: FollowUpCase, email: str = "bob@example.com") -> None:
    async with sign_in(app, email) as person:
        path = f"/cases/{case.id}"
        reply = await person.post(path, data={"csrf_token": await csrf(person, path), "status": "resolved"})
        assert reply.status_code == 303, reply.text


async def api(app, method: str, path: str, key: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return await client.request(method, path, headers={"authorization": f"Bearer {key}"}, **kwargs)


async def test_a_resolved_case_asks_its_customer_once_in_their_language_and_the_answer_recovers_them(
    mail_app, mail_settings, catalog, org, smtp
):
    case = await unhappy_case(mail_app, mail_settings, catalog)
    first = await Invitation.get(response__id=case.response_id)
    before = datetime.now(UTC)
    await resolve_on_the_page(mail_app, case)

    case = await FollowUpCase.get(id=case.id)
    asked = await Invitation.get(id=case.recovery_invitation_id)
    assert (asked.survey_id, asked.contact_id, asked.status, asked.locale) == (
        "csat",
        first.contact_id,
        "scheduled",
        "pl",
    )
    assert asked.touchpoint_id == first.touchpoint_id  # the answer counts for the same team and channel
    delay = timedelta(hours=mail_settings.recovery_delay_hours)
    assert before + delay <= asked.send_at <= datetime.now(UTC) + delay
    [message] = await OutboxMessage.filter(invitation_id=asked.id)
    assert (message.kind, message.payload, message.to_email) == (
        "invitation",
        {"case_id": case.id},
        "person1@example.com",
    )

    async with sign_in(mail_app, "bob@example.com") as bob:  # the case page says what became of it
        assert 'id="follow-up"' in (await bob.get(f"/cases/{case.id}")).text

    # the worker sends it when it is due, as every invitation
    await OutboxMessage.filter(id=message.id).update(next_attempt_at=datetime.now(UTC))
    await Dispatcher(mail_settings, catalog, environment()).step()
    [sent] = [m for m in smtp.by_recipient("person1@example.com") if m["Message-ID"] == message.message_id]
    assert sent["Subject"] == i18n.translate("pl", mail.RECOVERY_SUBJECT)
    assert sent["Content-Language"] == "pl"
    text = sent.get_body(("plain",)).get_content()
    assert i18n.translate("pl", mail.RECOVERY_LEAD) in text
    assert catalog.get("csat").question.text["pl"].replace("{company}", "Acme") in text  # the original question
    assert "/s/" in text and "?score=1" in text and "?score=5" in text  # and its scale
    # its answer page asks the same above the question; the first invitation's page does not
    asked_line = f'<p class="lead">{i18n.translate("pl", mail.RECOVERY_SUBJECT)}</p>'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        page = await client.get(re.search(r"(/s/[^\s?]+)\?score=5", text).group(1) + "?score=5")
        assert page.status_code == 200 and asked_line in page.text
        assert catalog.get("csat").question.text["pl"].replace("{company}", "Acme") in page.text
        assert asked_line not in (await client.get(survey_url(mail_settings, first.id))).text

    # the answer to it is linked to the case through its invitation, and recovers the customer (1 -> 5)
    await answer(mail_app, mail_settings, asked.id, 5, "Thank you, all fine now")
    follow_up = await Response.get(invitation_id=case.recovery_invitation_id)
    assert follow_up.score == 5 and follow_up.team_id == org.warsaw.id
    today = datetime.now(UTC).date()
    found = await recovery.report(catalog, mail_settings, None, today - timedelta(days=1), today + timedelta(days=1))
    figures = found.total.as_json()
    assert figures["cases"] == 1
    assert figures["recovery"] == {
        "detractors": 1,
        "answered_again": 1,
        "recovered": 1,
        "recovered_share": 1.0,
        "recovered_share_of_answered": 1.0,
    }
    assert figures["first_contact"]["count"] == 1 and figures["resolution"]["count"] == 1

    key = await make_key("cases:write", "cases:read")
    shown = (await api(mail_app, "GET", f"/api/v1/cases/{case.id}", key)).json()["follow_up"]
    assert shown["invitation_id"] == asked.id and shown["response_id"] == follow_up.id and shown["score"] == 5

    # reopened and resolved again: never a second question for one case
    for status in ("open", "resolved"):
        reply = await api(mail_app, "PATCH", f"/api/v1/cases/{case.id}", key, json={"status": status})
        assert reply.status_code == 200, reply.text
    assert await Invitation.filter(contact_id=first.contact_id).count() == 2
    assert await OutboxMessage.filter(kind="invitation").count() == 2  # the first invitation's and the follow-up's


async def test_a_customer_who_opted_out_is_not_asked_and_the_case_says_why(mail_app, mail_settings, catalog, org):
    case = await unhappy_case(mail_app, mail_settings, catalog)
    await Contact.filter(id=case.contact_id).update(opted_out_at=datetime.now(UTC))
    await resolve_on_the_page(mail_app, case)
    case = await FollowUpCase.get(id=case.id)
    asked = await Invitation.get(id=case.recovery_invitation_id)
    assert (asked.status, asked.skip_reason) == ("skipped", rules.OPTED_OUT)
    assert not await OutboxMessage.filter(invitation_id=asked.id).exists()


async def test_another_recent_survey_uses_the_fatigue_budget_but_the_cases_own_does_not(
    mail_app, mail_settings, catalog, org
):
    case = await unhappy_case(mail_app, mail_settings, catalog)
    other = await unhappy_case(mail_app, mail_settings, catalog, 2)
    # customer 2 was also asked about something else a week ago: the follow-up would be a second survey too soon
    await Invitation.create(
        survey_id="nps",
        contact_id=other.contact_id,
        locale="pl",
        status="sent",
        send_at=datetime.now(UTC) - timedelta(days=7),
    )
    key = await make_key("cases:write")
    for each in (case, other):
        reply = await api(mail_app, "PATCH", f"/api/v1/cases/{each.id}", key, json={"status": "resolved"})
        assert reply.status_code == 200, reply.text
    asked = await Invitation.get(id=(await FollowUpCase.get(id=case.id)).recovery_invitation_id)
    assert asked.status == "scheduled"
    skipped = await Invitation.get(id=(await FollowUpCase.get(id=other.id)).recovery_invitation_id)
    assert (skipped.status, skipped.skip_reason) == ("skipped", rules.FATIGUE)


async def test_the_follow_up_counts_against_the_next_invitation(mail_app, mail_settings, catalog, org):
    from pulse.touchpoints import ingest
    from tests.conftest import event

    case = await unhappy_case(mail_app, mail_settings, catalog)
    await recovery.offer(case, catalog, mail_settings.replace(recovery_delay_hours=0))
    [outcome] = await ingest(
        [event(1, external_id="T-later", occurred_at=datetime.now(UTC).isoformat())], catalog, mail_settings
    )
    assert (outcome.status, outcome.reason) == ("skipped", rules.FATIGUE)


async def test_nothing_is_asked_when_the_setting_is_off(mail_app, mail_settings, catalog, org):
    case = await unhappy_case(mail_app, mail_settings, catalog)
    assert await recovery.offer(case, catalog, mail_settings.replace(recovery_followup=False)) is None
    assert (await FollowUpCase.get(id=case.id)).recovery_decided_at is None
    assert await Invitation.all().count() == 1


def test_skip_reasons_follow_the_rules_of_every_invitation():
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    base = {"email": "a@example.com", "opted_out": False, "bounced": False, "erased": False, "history": [],
            "send_at": now, "window": timedelta(days=30), "exempt": 7}  # fmt: skip
    recent = rules.Prior(7, "csat", "answered", now - timedelta(days=3))
    assert recovery.skip_reason(**base) is None
    assert recovery.skip_reason(**{**base, "history": [recent]}) is None  # the case's own invitation
    assert recovery.skip_reason(**{**base, "history": [recent], "exempt": None}) == rules.FATIGUE
    old = rules.Prior(8, "nps", "sent", now - timedelta(days=31))
    skipped = rules.Prior(9, "nps", "skipped", now - timedelta(days=1))
    assert recovery.skip_reason(**{**base, "history": [old, skipped]}) is None
    assert recovery.skip_reason(**{**base, "email": ""}) == rules.NO_EMAIL
    assert recovery.skip_reason(**{**base, "erased": True}) == "erased"
    assert recovery.skip_reason(**{**base, "bounced": True}) == rules.BOUNCED


@pytest.fixture
async def worked(mail_app, mail_settings, catalog, org):
    """Warsaw: a case recovered (1 -> 5) and one not (1 -> 2, then resolved again); Milan: a case still open."""
    key = await make_key("cases:write", "cases:read")
    for number, later in ((1, 5), (2, 2)):
        case = await unhappy_case(mail_app, mail_settings, catalog, number)
        reply = await api(mail_app, "PATCH", f"/api/v1/cases/{case.id}", key, json={"note": "Called the customer"})
        assert reply.status_code == 200
        reply = await api(mail_app, "PATCH", f"/api/v1/cases/{case.id}", key, json={"status": "resolved"})
        assert reply.status_code == 200
        case = await FollowUpCase.get(id=case.id)
        await answer(mail_app, mail_settings, case.recovery_invitation_id, later, "Well")
        if later == 2:  # still unhappy: the same case opens again (no second case), and is resolved again
            assert (await FollowUpCase.get(id=case.id)).status == "open"
            assert await FollowUpCase.filter(contact_id=case.contact_id).count() == 1
            reply = await api(mail_app, "PATCH", f"/api/v1/cases/{case.id}", key, json={"status": "resolved"})
            assert reply.status_code == 200
    await unhappy_case(mail_app, mail_settings, catalog, 3, team="support-milan")
    return key


async def test_the_api_reports_per_team_with_counts(mail_app, catalog, worked):
    # the unhappy answer to a follow-up reopened its case: it is no complaint without a case
    assert await followups.orphans(catalog) == {"unhappy_answers_without_case": 0, "open_cases_without_owner": 0}
    reply = await api(mail_app, "GET", "/api/v1/cases/recovery", worked)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    by_team = {row["team"]: row for row in data["teams"]}
    warsaw, milan = by_team["support-warsaw"], by_team["support-milan"]
    assert warsaw["cases"] == 2 and milan["cases"] == 1
    assert warsaw["recovery"]["detractors"] == 2 and warsaw["recovery"]["answered_again"] == 2
    assert warsaw["recovery"]["recovered"] == 1 and warsaw["recovery"]["recovered_share"] == 0.5
    assert warsaw["first_contact"]["count"] == 2 and warsaw["resolution"]["count"] == 2
    assert milan["recovery"]["detractors"] == 0 and milan["recovery"]["recovered_share"] is None
    assert milan["first_contact"] == {"count": 0, "median_seconds": None, "mean_seconds": None}
    assert data["total"]["cases"] == 3 and data["total"]["recovery"]["recovered"] == 1
    only = (await api(mail_app, "GET", "/api/v1/cases/recovery?team=support-milan", worked)).json()
    assert [row["team"] for row in only["teams"]] == ["support-milan"]
    long_ago = (await api(mail_app, "GET", "/api/v1/cases/recovery?from=2026-01-01&to=2026-01-31", worked)).json()
    assert long_ago["teams"] == [] and long_ago["total"]["cases"] == 0


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?from=yesterday", 400, "from must be a date such as 2026-03-01."),
        ("?from=2026-03-02&to=2026-03-01", 400, "from must be on or before to."),
        ("?team=nowhere", 400, "No team has the slug 'nowhere'."),
        ("?to=1200-01-01", 400, "to must be a date from"),
        ("?survey=csat", 400, "Unknown parameter survey"),
    ],
)
async def test_bad_api_input_is_a_400_with_a_sentence(mail_app, worked, query, status, message):
    reply = await api(mail_app, "GET", f"/api/v1/cases/recovery{query}", worked)
    assert reply.status_code == status
    assert reply.json()["error"].startswith(message)


async def test_the_api_needs_the_cases_read_scope(mail_app, org):
    key = await make_key("touchpoints:write")
    assert (await api(mail_app, "GET", "/api/v1/cases/recovery", key)).status_code == 403


async def test_the_page_shows_a_manager_only_their_teams(mail_app, worked):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/cases/recovery")
        assert page.status_code == 200
        assert "Support Warsaw" in page.text and "Support Milan" not in page.text
        assert "50%" in page.text  # one of two detractors recovered, through Babel
        refused = await bob.get("/cases/recovery?team=support-milan")
        assert refused.status_code == 400
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/cases/recovery")
        assert "Support Warsaw" in page.text and "Support Milan" in page.text
        inbox = await alice.get("/cases")
        assert 'href="/cases/recovery"' in inbox.text


async def test_the_page_speaks_the_readers_language(mail_app, worked):
    async with sign_in(mail_app, "marco@example.com") as marco:  # Italian, Milan only: one open case
        page = await marco.get("/cases/recovery")
        assert page.status_code == 200
        assert '<html lang="it"' in page.text
        assert "Support Milan" in page.text and "Support Warsaw" not in page.text


async def test_a_bad_date_on_the_page_is_told_beside_its_field(mail_app, worked):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/cases/recovery?from=2026-13-01")
        assert page.status_code == 400
        assert 'id="error-from"' in page.text
        assert "2026-13-01" in page.text


async def test_the_follow_up_waits_the_delay_then_leaves_the_customers_quiet_hours(
    mail_app, mail_settings, catalog, org
):
    from datetime import time
    from zoneinfo import ZoneInfo

    case = await unhappy_case(mail_app, mail_settings, catalog)  # a customer in Europe/Warsaw
    warsaw = ZoneInfo("Europe/Warsaw")
    resolved = datetime(2026, 12, 2, 21, 30, tzinfo=warsaw)  # + 24 h is 21:30 tomorrow, inside 20:00-08:00
    settings = mail_settings.replace(quiet_hours=(time(20), time(8)), recovery_delay_hours=24)
    asked = await recovery.offer(case, catalog, settings, now=resolved.astimezone(UTC))
    assert asked is not None and asked.reason is None
    assert asked.send_at == datetime(2026, 12, 4, 8, 0, tzinfo=warsaw)
    assert await recovery.offer(case, catalog, settings, now=resolved.astimezone(UTC)) is None  # once
