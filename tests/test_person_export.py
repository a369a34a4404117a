"""Exporting a person: one JSON document with everything Pulse holds about a customer, readable by them, from the
API, the command line and the contact's page; every export is in the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import db
from pulse.models import AuditEvent, Contact, FollowUpCase, Response
from pulse.touchpoints import ingest
from tests.conftest import event, make_key, sent_invitation, sign_in
from tests.test_case_note_events import post_answer, save
from tests.test_cli import pulse

FIRST = "Too slow, order 4471"
SECOND = "Still waiting for order 4471"
NOTE = "Rang twice, no answer"


@pytest.fixture
async def story(mail_app, mail_settings, catalog, org):
    """Customer C-1 answered twice (the second replaced the first), has a case with Bob's note, a second event
    that was not surveyed (asked recently), and unsubscribed."""
    invitation = await sent_invitation(mail_settings, catalog, 1, attributes={"order": "4471"})
    await post_answer(mail_app, mail_settings, invitation, 1, FIRST)
    response = await Response.get(invitation_id=invitation.id)
    await Response.filter(id=response.id).update(updated_at=datetime.now(UTC) - timedelta(minutes=10))
    await post_answer(mail_app, mail_settings, invitation, 2, SECOND)
    case = await FollowUpCase.get(response_id=response.id)
    async with sign_in(mail_app, "bob@example.com") as bob:
        await save(bob, f"/cases/{case.id}", note=NOTE)
    occurred = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    [skipped] = await ingest(
        [
            event(
                2,
                occurred_at=occurred,
                contact_external_id="C-1",
                contact_email="person1@example.com",
                contact_name="Person 1",
            )
        ],
        catalog,
        mail_settings,
    )
    assert (skipped.status, skipped.reason) == ("skipped", "fatigue")
    await Contact.filter(external_id="C-1").update(opted_out_at=datetime(2026, 11, 30, 12, tzinfo=UTC))
    return invitation


def check_document(document: dict) -> None:
    """What a person asking for their data must find in it."""
    assert document["contact"]["external_id"] == "C-1"
    assert document["contact"]["email"] == "person1@example.com"
    assert document["contact"]["name"] == "Person 1"
    assert document["contact"]["language"] == "pl"
    assert [t["reference"] for t in document["touchpoints"]] == ["T-1", "T-2"]
    assert document["touchpoints"][0]["details"] == {"order": "4471"}
    assert document["touchpoints"][0]["team"] == "Support Warsaw"
    statuses = [(i["status"], i["why_not_sent"]) for i in document["invitations"]]
    assert statuses == [("Answered", None), ("Not sent", "asked recently")]
    [answer] = document["answers"]
    assert (answer["score"], answer["comment"], answer["counted"]) == (2, SECOND, True)
    assert [(h["score"], h["comment"]) for h in answer["earlier_answers"]] == [(1, FIRST)]
    [case] = document["cases"]
    assert [n["text"] for n in case["notes"]] == [NOTE]
    assert document["unsubscribes"]["unsubscribed_from_surveys_at"] == "2026-11-30T12:00:00+00:00"
    assert document["unsubscribes"]["address_bounced_at"] is None


async def test_the_api_exports_everything_about_a_contact_as_one_document(story, mail_app):
    key = await make_key("privacy:read")
    async with _api(mail_app, key) as client:
        reply = await client.get("/api/v1/contacts/C-1/export")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-disposition"] == 'attachment; filename="personal-data.json"'
    check_document(reply.json())
    [entry] = await AuditEvent.filter(action="contact.exported")
    assert (entry.actor, entry.target) == ("api key test system (" + key.split("_")[1] + ")", "contact C-1")


async def test_export_needs_the_privacy_read_scope_and_a_known_contact(story, mail_app):
    writer = await make_key("privacy:write")
    async with _api(mail_app, writer) as client:
        refused = await client.get("/api/v1/contacts/C-1/export")
    assert (refused.status_code, refused.json()["error"]) == (403, "This API key lacks the privacy:read scope.")
    reader = await make_key("privacy:read")
    async with _api(mail_app, reader) as client:
        unknown = await client.get("/api/v1/contacts/C-404/export")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "No contact has the external id 'C-404'.")
    assert not await AuditEvent.filter(action="contact.exported").exists()


async def test_an_admin_downloads_it_from_the_contact_page_and_a_manager_cannot(story, mail_app):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/contacts/C-1")
        assert 'href="/contacts/C-1/personal-data.json"' in page.text
        reply = await alice.get("/contacts/C-1/personal-data.json")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert "\n  " in reply.text  # indented: a person can read it
    check_document(json.loads(reply.text))
    assert await AuditEvent.filter(action="contact.exported", actor="alice@example.com").exists()
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/contacts/C-1")
        assert page.status_code == 200
        assert "personal-data.json" not in page.text
        assert (await bob.get("/contacts/C-1/personal-data.json")).status_code == 403


def test_the_command_line_writes_the_document(database_url, tmp_path):
    import asyncio

    async def prepare() -> None:
        async with db.connected(database_url):
            await Contact.create(external_id="C-7", email="seven@example.com", name="Seven", attributes={"plan": "x"})

    asyncio.run(prepare())
    out = tmp_path / "seven.json"
    result = pulse("export", "contact", "C-7", "--out", str(out), database_url=database_url)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert (document["contact"]["email"], document["contact"]["attributes"]) == ("seven@example.com", {"plan": "x"})
    assert document["touchpoints"] == document["answers"] == document["cases"] == []
    printed = pulse("export", "contact", "C-7", database_url=database_url)
    assert json.loads(printed.stdout)["contact"]["name"] == "Seven"
    missing = pulse("export", "contact", "C-8", database_url=database_url)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: No contact has the external id 'C-8'.")


def _api(app, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    )
