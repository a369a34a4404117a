"""What Pulse records on a case (a changed score, a status, an owner, an escalation) is stored as an event and
read in each reader's language; the API keeps codes and English; old English notes become events."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import db, followups, i18n
from pulse.models import CaseNote, FollowUpCase, Response, User
from tests import pseudo_catalog
from tests.conftest import make_key, make_settings, old_nonce, sent_invitation, sign_in, survey_url

SCORE_CHANGED = "The customer changed the score from %(old)s to %(new)s."
COMMENT = "Comment: %(comment)s"
STATUS = "Status: %(old)s → %(new)s."
OWNER = "Owner: %(owner)s."
ESCALATED = "Overdue: escalated to %(owner)s."


@pytest.fixture
def mail_settings(database_url, smtp):
    return make_settings(database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off", PULSE_FATIGUE_DAYS="0")


async def post_answer(app, settings, invitation, score: int, comment: str) -> None:
    data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.post(
            survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"}
        )
    assert reply.status_code == 200, reply.text


async def save(client, path: str, **form: str) -> None:
    page = await client.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    reply = await client.post(path, data={"csrf_token": token, **form})
    assert reply.status_code == 303, reply.text


@pytest.fixture
def pseudo(tmp_path, monkeypatch):
    """The real catalogs, with these msgids translated even before the lead fills them (tests/pseudo_catalog.py)."""
    pseudo_catalog.install([SCORE_CHANGED, COMMENT, STATUS, OWNER, ESCALATED], tmp_path / "locales", monkeypatch)
    yield
    pseudo_catalog.reset()


@pytest.fixture
async def eventful(mail_app, mail_settings, catalog, org) -> FollowUpCase:
    """A Warsaw case (Bob's) whose customer changed the score, moved to in progress and given to Carol by Bob,
    with a note of Bob's, then escalated to Carol (the parent team's owner) when overdue."""
    invitation = await sent_invitation(mail_settings, catalog)
    await post_answer(mail_app, mail_settings, invitation, 1, "Too slow")
    response = await Response.get(invitation_id=invitation.id)
    await Response.filter(id=response.id).update(updated_at=datetime.now(UTC) - timedelta(minutes=10))
    await post_answer(mail_app, mail_settings, invitation, 2, "Still <waiting>")
    case = await FollowUpCase.get(response_id=response.id)
    path = f"/cases/{case.id}"
    async with sign_in(mail_app, "bob@example.com") as bob:
        await save(bob, path, status="in_progress")
        await save(bob, path, owner="carol@example.com")
        await save(bob, path, note="Rang twice, no answer")
    assert await followups.escalate_overdue(mail_settings, now=case.due_at + timedelta(days=1)) == 1
    return case


def notes_on(page: str) -> list[str]:
    listed = re.search(r'<ol class="notes">(.*?)</ol>', page, re.S).group(1)
    return [html.unescape(text) for text in re.findall(r"<br>(.*?)</li>", listed, re.S)]


def expected_notes(locale: str) -> list[str]:
    """The notes as a reader of `locale` should read them: each msgid translated with its variables."""
    t = i18n.translate
    return [
        t(locale, SCORE_CHANGED, old=1, new=2) + " " + t(locale, COMMENT, comment="Still <waiting>"),
        t(locale, STATUS, old=t(locale, "Open"), new=t(locale, "In progress")),
        t(locale, OWNER, owner="Carol Care"),  # her name as it is now, not an e-mail frozen in the note
        "Rang twice, no answer",
        t(locale, ESCALATED, owner="Carol Care"),
    ]


async def test_events_are_stored_as_codes_and_data_not_sentences(eventful, org):
    stored = await CaseNote.filter(case_id=eventful.id).order_by("id").values_list("kind", "data", "body", "author_id")
    carol, bob = org.care_lead.id, org.warsaw_lead.id
    assert stored == [
        ("score_changed", {"from": 1, "to": 2, "survey": "csat", "comment": "Still <waiting>"}, "", None),
        ("status", {"from": "open", "to": "in_progress"}, "", bob),
        ("owner", {"user_id": carol}, "", bob),
        ("note", {}, "Rang twice, no answer", bob),
        ("escalated", {"user_id": carol}, "", None),
    ]


@pytest.mark.parametrize("locale", ["pl", "it", "sl"])
async def test_the_case_page_tells_each_event_in_the_readers_language(mail_app, eventful, pseudo, locale):
    await User.filter(email="bob@example.com").update(locale=locale)
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get(f"/cases/{eventful.id}")
    assert page.status_code == 200
    assert notes_on(page.text) == expected_notes(locale)
    assert "carol@example.com." not in page.text  # the owner by name, as the user is called today


async def test_a_renamed_owner_reads_under_the_new_name(mail_app, eventful):
    await User.filter(email="carol@example.com").update(display_name="Carol Newname")
    await User.filter(email="bob@example.com").update(locale="en")
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get(f"/cases/{eventful.id}")
    assert notes_on(page.text)[2] == "Owner: Carol Newname."


async def test_the_api_gives_kind_data_and_english_text(mail_client, eventful, org):
    key = await make_key("cases:read")
    reply = await mail_client.get(f"/api/v1/cases/{eventful.id}", headers={"authorization": f"Bearer {key}"})
    notes = reply.json()["notes"]
    assert [(n["kind"], n["text"]) for n in notes] == [
        ("score_changed", "The customer changed the score from 1 to 2. Comment: Still <waiting>"),
        ("status", "Status: open → in_progress."),
        ("owner", "Owner: carol@example.com."),
        ("note", "Rang twice, no answer"),
        ("escalated", "Overdue: escalated to carol@example.com."),
    ]
    assert notes[2]["data"] == {"user_id": org.care_lead.id}
    assert [n["body"] for n in notes] == [n["text"] for n in notes]  # as clients written before `kind` read it
    assert (notes[0]["author"], notes[1]["author"]) == (None, "bob@example.com")
    timeline = await mail_client.get(
        "/api/v1/contacts/C-1/timeline", headers={"authorization": f"Bearer {await make_key('responses:read')}"}
    )
    [case] = [e for e in timeline.json()["events"] if e["kind"] == "case"]
    assert case["notes"] == [n["text"] for n in notes]


async def test_old_english_notes_become_events_when_migrated(empty_database_url):
    """0009: the sentences Pulse wrote before notes had a kind become events; a person's words, and sentences
    naming nobody known, stay notes."""
    url = empty_database_url
    await db.migrate(url, target="models.0008_worker_heartbeat")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.connected(url):
        for email in ("bob@example.com", "carol@example.com"):
            await db.fetch(
                "INSERT INTO app_user (email, display_name, locale, role, password_hash, is_active, created_at)"
                " VALUES (?, '', 'pl', 'manager', 'x', ?, ?)",
                [email, True, at],
            )
        await db.fetch(
            "INSERT INTO followup_case (status, due_at, created_at, updated_at, survey_id, from_link)"
            " VALUES ('open', ?, ?, ?, 'csat', ?)",
            [at, at, at, False],
        )
        for author, body in (
            (None, "The customer changed the score from 2 to 4. Comment: Better now.\nThanks"),
            (None, "The customer changed the score from 1 to 3."),
            (1, "Status: open → in_progress."),
            (1, "Status: resolved → open."),
            (1, "Owner: Carol@example.com."),
            (None, "Overdue: escalated to bob@example.com."),
            (None, "Overdue: escalated to gone@example.com."),  # nobody by that address: left as it was
            (1, "Status: open → lost."),  # no such status
            (1, "Called back, all fine."),
        ):
            await db.fetch(
                "INSERT INTO case_note (body, created_at, author_id, case_id) VALUES (?, ?, ?, 1)", [body, at, author]
            )
    assert (await db.migrate(url))[0] == "models.0009_case_note_events"  # and any later ones
    async with db.connected(url):
        stored = await CaseNote.all().order_by("id").values_list("kind", "data", "body")
    assert stored == [
        ("score_changed", {"from": 2, "to": 4, "survey": "csat", "comment": "Better now.\nThanks"}, ""),
        ("score_changed", {"from": 1, "to": 3, "survey": "csat", "comment": ""}, ""),
        ("status", {"from": "open", "to": "in_progress"}, ""),
        ("status", {"from": "resolved", "to": "open"}, ""),
        ("owner", {"user_id": 2}, ""),
        ("escalated", {"user_id": 1}, ""),
        ("note", {}, "Overdue: escalated to gone@example.com."),
        ("note", {}, "Status: open → lost."),
        ("note", {}, "Called back, all fine."),
    ]


async def test_the_openapi_document_describes_a_notes_kind_data_and_text(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    note = document["components"]["schemas"]["CaseNote"]
    assert {"kind", "data", "text"} <= set(note["required"])
    assert note["properties"]["kind"]["enum"] == ["note", "status", "owner", "escalated", "score_changed"]
    case = document["paths"]["/api/v1/cases/{case_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert case["schema"]["properties"]["notes"]["items"] == {"$ref": "#/components/schemas/CaseNote"}
