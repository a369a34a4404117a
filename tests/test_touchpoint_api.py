"""POST /api/v1/touchpoints: auth, validation, idempotency, batches, CSV; bad input changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse.accounts import revoke_api_key
from pulse.models import ApiKey, Contact, Invitation, OutboxMessage, Team, Touchpoint
from tests.conftest import event, make_key

NOW = datetime.now(UTC)


def recent(minutes: int = 90) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


@pytest.fixture
async def key(mail_app) -> str:
    return await make_key("touchpoints:write")


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def counts() -> tuple[int, ...]:
    return (
        await Touchpoint.all().count(),
        await Contact.all().count(),
        await Invitation.all().count(),
        await OutboxMessage.all().count(),
    )


async def test_missing_invalid_and_revoked_keys_are_401(mail_client: httpx.AsyncClient, key: str):
    missing = await mail_client.post("/api/v1/touchpoints", json=event())
    assert missing.status_code == 401
    assert missing.json() == {"error": "Send your API key as 'Authorization: Bearer <key>'.", "errors": []}
    wrong = await mail_client.post("/api/v1/touchpoints", json=event(), headers=auth(key + "x"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "This API key is not valid, or it has been revoked."
    await revoke_api_key(key.split("_")[1])
    revoked = await mail_client.post("/api/v1/touchpoints", json=event(), headers=auth(key))
    assert revoked.status_code == 401
    assert await counts() == (0, 0, 0, 0)


async def test_a_key_without_the_scope_is_403(mail_client: httpx.AsyncClient):
    other = await make_key("analytics:read")
    response = await mail_client.post("/api/v1/touchpoints", json=event(), headers=auth(other))
    assert response.status_code == 403
    assert response.json()["error"] == "This API key lacks the touchpoints:write scope."


async def test_one_event_invites_and_schedules_an_email(mail_client: httpx.AsyncClient, key: str):
    response = await mail_client.post("/api/v1/touchpoints", json=event(occurred_at=recent()), headers=auth(key))
    assert response.status_code == 202
    [result] = response.json()["results"]
    assert result["status"] == "invited"
    assert result["survey"] == "csat"
    assert result["reason"] is None
    invitation = await Invitation.get(id=result["invitation_id"]).select_related("contact", "touchpoint")
    assert invitation.status == "scheduled"
    assert invitation.locale == "pl"
    assert invitation.touchpoint.team_id == (await Team.get(slug="support-warsaw")).id
    # the survey's delay is 60 minutes after the event; the event was 90 minutes ago, so: now
    assert abs(invitation.send_at - datetime.now(UTC)) < timedelta(seconds=30)
    assert result["send_at"] == invitation.send_at.isoformat().replace("+00:00", "Z")
    message = await OutboxMessage.get(invitation_id=invitation.id)
    assert (message.status, message.to_email, message.locale) == ("pending", "person1@example.com", "pl")
    assert (await ApiKey.get(prefix=key.split("_")[1])).last_used_at is not None


async def test_a_replayed_event_is_a_duplicate_and_stores_nothing(mail_client: httpx.AsyncClient, key: str):
    first = await mail_client.post("/api/v1/touchpoints", json=event(occurred_at=recent()), headers=auth(key))
    before = await counts()
    again = await mail_client.post("/api/v1/touchpoints", json=event(occurred_at=recent()), headers=auth(key))
    assert first.json()["results"][0]["status"] == "invited"
    assert again.json()["results"][0]["status"] == "duplicate"
    assert await counts() == before
    other_source = await mail_client.post(
        "/api/v1/touchpoints", json=event(occurred_at=recent(), source="shop"), headers=auth(key)
    )
    assert other_source.json()["results"][0]["status"] == "skipped"  # a new event, but the same person: fatigue
    assert other_source.json()["results"][0]["reason"] == "fatigue"


async def test_one_invalid_event_does_not_reject_the_others(mail_client: httpx.AsyncClient, key: str):
    bad = event(2, occurred_at="yesterday", contact_email="not-an-address")
    del bad["type"]
    batch = {"events": [event(1, occurred_at=recent()), bad, event(1, occurred_at=recent())]}
    response = await mail_client.post("/api/v1/touchpoints", json=batch, headers=auth(key))
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["invited", "invalid", "duplicate"]
    assert results[1]["errors"] == [
        {"field": "type", "message": "type is required"},
        {
            "field": "occurred_at",
            "message": "occurred_at must be an ISO 8601 date-time such as 2026-03-01T10:00:00+01:00",
        },
        {"field": "contact.email", "message": "contact.email is not an e-mail address"},
    ]
    assert await Touchpoint.all().count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"occurred_at": "2026-01-01T10:00:00"},
            "occurred_at",
            "occurred_at must include a UTC offset, such as +01:00 or Z",
        ),
        ({"occurred_at": "2999-01-01T10:00:00Z"}, "occurred_at", "occurred_at is in the future"),
        ({"contact": None}, "contact", "contact is required"),
        ({"contact": "C-1"}, "contact", "contact must be an object with external_id and email"),
        ({"type": "Support Ticket"}, "type", "type must be a lowercase code such as support_ticket_closed"),
        ({"colour": "red"}, "colour", "colour is not a known field"),
        (
            {"attributes": {"nested": {"a": 1}}},
            "attributes.nested",
            "attributes.nested must be a string, number, boolean or null",
        ),
        ({"external_id": "x" * 201}, "external_id", "external_id must be at most 200 characters"),
    ],
)
async def test_field_errors_say_what_is_wrong(mail_client: httpx.AsyncClient, key: str, changes, field, message):
    response = await mail_client.post("/api/v1/touchpoints", json=event(**changes), headers=auth(key))
    assert response.status_code == 202
    [result] = response.json()["results"]
    assert result["status"] == "invalid"
    assert {"field": field, "message": message} in result["errors"]
    assert await counts() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "The body is not valid JSON: "),
        (b"[1, 2]", "application/json", 400, "The body must be an event object, a list of event objects"),
        (b'{"events": 5}', "application/json", 400, "'events' must be a list of event objects."),
        (b'{"events": []}', "application/json", 400, "The batch is empty: send at least one event."),
        (b"<xml/>", "application/xml", 415, "Send application/json or text/csv."),
    ],
)
async def test_bad_bodies_are_4xx_with_a_sentence(mail_client, key, body, content_type, status, message):
    response = await mail_client.post(
        "/api/v1/touchpoints", content=body, headers={**auth(key), "content-type": content_type}
    )
    assert response.status_code == status
    assert response.json()["error"].startswith(message)
    assert await counts() == (0, 0, 0, 0)


async def test_more_than_1000_events_is_413(mail_client: httpx.AsyncClient, key: str):
    batch = {"events": [event(n) for n in range(1001)]}
    response = await mail_client.post("/api/v1/touchpoints", json=batch, headers=auth(key))
    assert response.status_code == 413
    assert response.json()["error"] == "A batch holds at most 1000 events; this one has 1001. Split it."
    assert await counts() == (0, 0, 0, 0)


async def test_contacts_are_upserted_by_external_id(mail_client: httpx.AsyncClient, key: str):
    await mail_client.post("/api/v1/touchpoints", json=event(1, occurred_at=recent()), headers=auth(key))
    changed = event(
        2,
        occurred_at=recent(),
        contact_external_id="C-1",
        contact_email="New@Example.com",
        contact_locale="it-IT",
        contact_timezone="Europe/Rome",
        contact_attributes={"plan": "pro"},
    )
    await mail_client.post("/api/v1/touchpoints", json=changed, headers=auth(key))
    contact = await Contact.get(external_id="C-1")
    assert (contact.email, contact.locale, contact.timezone) == ("new@example.com", "it-IT", "Europe/Rome")
    assert contact.attributes == {"plan": "pro"}
    assert await Contact.all().count() == 1


async def test_skip_reasons_are_stored_on_the_invitation(mail_client: httpx.AsyncClient, key: str):
    batch = {
        "events": [
            event(1, type="newsletter_opened", occurred_at=recent()),
            event(2, contact_email="", occurred_at=recent()),
            event(3, occurred_at=(NOW - timedelta(days=8)).isoformat()),
        ]
    }
    results = (await mail_client.post("/api/v1/touchpoints", json=batch, headers=auth(key))).json()["results"]
    assert [(r["status"], r["reason"]) for r in results] == [
        ("skipped", "no_survey_for_type"),
        ("skipped", "no_email"),
        ("skipped", "stale_event"),
    ]
    stored = await Invitation.all().order_by("id").values_list("status", "skip_reason")
    assert stored == [("skipped", "no_email"), ("skipped", "stale_event")]  # no survey: nothing to record
    assert await OutboxMessage.all().count() == 0


async def test_csv_upload_flattens_contact_columns(mail_client: httpx.AsyncClient, key: str):
    csv_body = (
        "external_id,type,occurred_at,contact_external_id,contact_email,contact_locale,contact_attributes_plan,team\n"
        f"R-1,support_ticket_closed,{recent()},C-9,nine@example.com,sl,basic,support-ljubljana\n"
        "R-2,support_ticket_closed,not-a-date,C-10,ten@example.com,sl,pro,support-ljubljana\n"
    )
    response = await mail_client.post(
        "/api/v1/touchpoints", content=csv_body.encode(), headers={**auth(key), "content-type": "text/csv"}
    )
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["invited", "invalid"]
    contact = await Contact.get(external_id="C-9")
    assert (contact.email, contact.locale, contact.attributes) == ("nine@example.com", "sl", {"plan": "basic"})


async def test_addresses_need_an_ascii_local_part_and_get_an_idna_domain(mail_client: httpx.AsyncClient, key: str):
    batch = {
        "events": [
            event(1, occurred_at=recent(), contact_email="piotr.wójcik@example.com"),
            event(2, occurred_at=recent(), contact_email="anna@żabka.pl"),
        ]
    }
    results = (await mail_client.post("/api/v1/touchpoints", json=batch, headers=auth(key))).json()["results"]
    assert results[0]["status"] == "invalid"
    assert results[0]["errors"] == [
        {
            "field": "contact.email",
            "message": "contact.email must have an ASCII part before the @ (SMTPUTF8 is not supported)",
        }
    ]
    assert results[1]["status"] == "invited"
    assert (await Contact.get(external_id="C-2")).email == "anna@xn--abka-99a.pl"
