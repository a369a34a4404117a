"""Delivery through a real SMTP server: content, retries with backoff, bounces, drops, crash recovery."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from pulse import i18n, outbox, tokens
from pulse.models import Contact, Invitation, OutboxMessage
from pulse.outbox import Dispatcher, claim
from pulse.rendering import environment
from pulse.rules import sample
from pulse.touchpoints import ingest
from tests.conftest import event

NOW = datetime.now(UTC)


def recent(minutes: int = 90) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


async def invite(mail_settings, catalog, *events: dict) -> list[int]:
    outcomes = await ingest(list(events), catalog, mail_settings)
    assert [o.status for o in outcomes] == ["invited"] * len(events), [o.as_json() for o in outcomes]
    return [o.invitation_id for o in outcomes]


def dispatcher(mail_settings, catalog) -> Dispatcher:
    return Dispatcher(mail_settings, catalog, environment())


async def test_the_email_is_localized_multipart_with_one_link_per_score(mail_app, mail_settings, catalog, smtp):
    # NPS samples half of its events: take an event id the deterministic sampler lets through
    number = next(n for n in range(1, 100) if sample("nps", "C-1", f"api:T-{n}") < 0.5)
    purchase = event(
        number,
        occurred_at=recent(25 * 60),
        type="purchase",
        contact_external_id="C-1",
        contact_email="person1@example.com",
        contact_locale="pl",
    )
    [invitation_id] = await invite(mail_settings, catalog, purchase)
    sender = dispatcher(mail_settings, catalog)
    assert await sender.step() == 1
    [message] = smtp.by_recipient("person1@example.com")
    nps = catalog.get("nps")
    assert message["Subject"] == nps.subject["pl"].replace("{company}", "Acme")
    assert message["Content-Language"] == "pl"
    assert message.get_content_type() == "multipart/alternative"
    stored = await OutboxMessage.get(invitation_id=invitation_id)
    assert message["Message-ID"] == stored.message_id
    assert message["Date"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # only the one-click https link: nothing reads the sender's mailbox, so a mailto: would unsubscribe no one
    unsubscribe_url = message["List-Unsubscribe"].removeprefix("<").removesuffix(">")
    assert unsubscribe_url.startswith("http://testserver/u/")
    assert "mailto:" not in message["List-Unsubscribe"] and "," not in message["List-Unsubscribe"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    links = re.findall(r"http://testserver/s/([^?\s\"]+)\?score=(\d+)", html)
    assert [int(score) for _, score in links] == list(range(0, 11))
    assert all(f"?score={n}" in text for n in range(11))
    token = links[0][0]
    assert tokens.read_token(mail_settings.secret_key, "survey", token, 60) == invitation_id
    assert "person1" not in token and "C-1" not in token  # nothing about the person in the URL
    assert nps.question.text["pl"].replace("{company}", "Acme") in html
    label = i18n.translate("pl", "%(score)s out of %(top)s", score=7, top=10)
    assert f'aria-label="{label}"' in html
    assert label != "7 out of 10"  # translated, not left in English
    assert 'lang="pl"' in html
    invitation = await Invitation.get(id=invitation_id)
    assert invitation.status == "sent"
    assert invitation.expires_at - invitation.sent_at == timedelta(days=30)
    assert stored.status == "sent"


async def test_a_4xx_is_retried_with_backoff_then_given_up(mail_app, mail_settings, catalog, smtp):
    [invitation_id] = await invite(mail_settings, catalog, event(occurred_at=recent()))
    smtp.data_reply = "451 4.3.0 Mailbox busy, try later"
    sender = dispatcher(mail_settings, catalog)
    assert await sender.step() == 1
    row = await OutboxMessage.get(invitation_id=invitation_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "451 4.3.0 Mailbox busy, try later")
    wait = row.next_attempt_at - datetime.now(UTC)
    assert timedelta(seconds=25) < wait < timedelta(seconds=95)  # one minute, jittered
    assert await sender.step() == 0  # not due yet
    for attempt in range(2, mail_settings.outbox_max_attempts + 1):
        await OutboxMessage.filter(id=row.id).update(next_attempt_at=datetime.now(UTC))
        assert await sender.step() == 1
        row = await OutboxMessage.get(id=row.id)
        assert row.attempts == attempt
    assert row.status == "failed"
    assert row.last_error.startswith(f"gave up after {mail_settings.outbox_max_attempts} attempts: 451")
    assert (await Invitation.get(id=invitation_id)).status == "failed"
    assert smtp.received == []


async def test_a_5xx_for_the_recipient_marks_the_contact_bounced(mail_app, mail_settings, catalog, smtp):
    first, second = await invite(mail_settings, catalog, event(1, occurred_at=recent()), event(2, occurred_at=recent()))
    smtp.rcpt_reply = "550 5.1.1 No such user"
    sender = dispatcher(mail_settings, catalog)
    await outbox.OutboxMessage.filter(invitation_id=second).update(next_attempt_at=NOW + timedelta(days=1))
    assert await sender.step() == 1
    row = await OutboxMessage.get(invitation_id=first)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "550 5.1.1 No such user")
    contact = await Contact.get(external_id="C-1")
    assert contact.bounced_at is not None
    assert (await Invitation.get(id=first)).status == "failed"
    assert (await Invitation.get(id=second)).status == "scheduled"  # another person is untouched
    # the bounced person gets nothing more: a new event is skipped with the reason
    outcomes = await ingest(
        [event(3, occurred_at=recent(), contact_external_id="C-1", contact_email="person1@example.com")],
        catalog,
        mail_settings,
    )
    assert (outcomes[0].status, outcomes[0].reason) == ("skipped", "bounced")


async def test_a_relay_that_hangs_up_opens_the_circuit_and_nothing_is_lost(mail_app, mail_settings, catalog, smtp):
    await invite(mail_settings, catalog, event(1, occurred_at=recent()), event(2, occurred_at=recent()))
    smtp.drop_next = 1  # a fresh connection that the relay drops: the relay is in trouble, not the message
    sender = dispatcher(mail_settings, catalog)
    assert await sender.step() == 0
    rows = await OutboxMessage.all().order_by("id")
    assert [(r.status, r.attempts, r.claimed_by) for r in rows] == [("pending", 0, None)] * 2  # claims released
    assert "hung up" in rows[0].last_error and rows[0].next_attempt_at > datetime.now(UTC)  # the circuit's wait
    assert await sender.step() == 0  # the circuit is open: not even a connection is tried
    assert smtp.received == []
    sender.breaker_until = 0  # the wait is over
    await OutboxMessage.all().update(next_attempt_at=datetime.now(UTC))
    assert await sender.step() == 2
    assert len(smtp.received) == 2
    assert await OutboxMessage.filter(status="sent").count() == 2


async def test_an_idle_connection_closed_by_the_relay_is_reopened_once(mail_app, mail_settings, catalog, smtp):
    await invite(mail_settings, catalog, event(1, occurred_at=recent()), event(2, occurred_at=recent()))
    sender = dispatcher(mail_settings.replace(outbox_batch=1), catalog)
    assert await sender.step() == 1  # a full batch: the connection stays open
    smtp.drop_next = 1  # meanwhile the relay closed it
    assert await sender.step() == 1
    await sender.close()
    assert len(smtp.received) == 2 and await OutboxMessage.filter(status="sent").count() == 2


async def test_a_crash_between_send_and_record_resends_once_with_the_same_message_id(
    mail_app, mail_settings, catalog, smtp
):
    [invitation_id] = await invite(mail_settings, catalog, event(occurred_at=recent()))
    sender = dispatcher(mail_settings, catalog)
    [claimed] = await claim(10, "worker-that-dies")
    [row] = await outbox.load([claimed])
    await sender._send(sender.render(row))  # sent, then the process dies before recording
    await sender.close()
    stale_after = timedelta(seconds=mail_settings.outbox_claim_seconds)
    assert await claim(10, "another-worker") == []  # still claimed: nobody sends it again yet
    later = datetime.now(UTC) + stale_after + timedelta(seconds=1)
    assert await claim(10, "another-worker", now=later) == [claimed]
    [row] = await outbox.load([claimed])
    await sender._send(sender.render(row))
    await sender.close()
    # the dead worker's result, should it come back, is not written over the new holder's claim
    await outbox.record([outbox.Result(claimed, "retry", "late")], mail_settings, "worker-that-dies")
    assert (await OutboxMessage.get(id=claimed)).status == "sending"
    await outbox.record([outbox.Result(claimed, "sent")], mail_settings, "another-worker")
    assert await claim(10, "third-worker", now=later + stale_after * 2) == []  # sent: never again
    ids = [m["Message-ID"] for m in smtp.received]
    assert len(ids) == 2 and ids[0] == ids[1]
    assert (await Invitation.get(id=invitation_id)).status == "sent"


async def test_opted_out_contacts_are_suppressed_not_sent(mail_app, mail_settings, catalog, smtp):
    [invitation_id] = await invite(mail_settings, catalog, event(occurred_at=recent()))
    await Contact.filter(external_id="C-1").update(opted_out_at=datetime.now(UTC))
    assert await dispatcher(mail_settings, catalog).step() == 1
    row = await OutboxMessage.get(invitation_id=invitation_id)
    assert (row.status, row.last_error) == ("suppressed", "the contact opted out")
    assert (await Invitation.get(id=invitation_id)).status == "suppressed"
    assert smtp.received == []


@pytest.mark.parametrize("attempts", [1, 2, 5, 20])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempts):
    low, high = outbox.backoff(attempts, rng=lambda: 0.0), outbox.backoff(attempts, rng=lambda: 0.999999)
    base = min(timedelta(minutes=2 ** (attempts - 1)), outbox.BACKOFF_CAP)
    assert low == base * 0.5
    assert base * 1.49 < high < base * 1.5
