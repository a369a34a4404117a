"""Erasing a person: nothing in the database still names or quotes them, the trends read the same, they are not
imported again until the suppression is lifted, and each erasure is in the audit log with its receipt."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.smtp import Envelope

from pulse import db, privacy, rollups
from pulse.devmail import MailCatcher
from pulse.models import (
    AuditEvent,
    CaseNote,
    Contact,
    DailyRollup,
    Employee,
    FlaggedAttempt,
    FollowUpCase,
    Invitation,
    LoyaltyLatest,
    LoyaltyStanding,
    OutboxMessage,
    PulseAnswer,
    PulseRound,
    Response,
    Suppression,
    Touchpoint,
    WebhookDelivery,
)
from pulse.responses import flag
from pulse.touchpoints import ingest
from tests.conftest import event, make_key, make_settings, sent_invitation, sign_in
from tests.test_case_note_events import post_answer, save

NAME = "Anna Erasmus-Kowalska"
EMAIL = "anna.erasmus@example.org"
FIRST = "Too slow, Anna here, order 4471"
SECOND = "Still waiting for order 4471"
NOTE = "Rang Anna Erasmus-Kowalska twice"
KEPT_COMMENT = "Quick and friendly"
NEEDLES = (EMAIL, NAME, FIRST, SECOND, NOTE)
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "varchar", "char", "clob")


@pytest.fixture
def mail_settings(database_url, smtp):
    return make_settings(
        database_url,
        PULSE_SMTP_PORT=str(smtp.port),
        PULSE_QUIET_HOURS="off",
        PULSE_FATIGUE_DAYS="0",
        PULSE_WEBHOOK_URL="http://127.0.0.1:9/hook",
        PULSE_WEBHOOK_SECRET="webhook-secret-0123456789",
    )


@pytest.fixture
async def story(mail_app, mail_settings, catalog, org):
    """Anna (C-1) answered 1 with a comment, then 2 with another; her case has Bob's note naming her, a flagged
    attempt, e-mails and webhook events. Piotr (C-2) answered 9 with a comment and stays."""
    anna = await sent_invitation(
        mail_settings,
        catalog,
        1,
        contact_name=NAME,
        contact_email=EMAIL,
        attributes={"order_note": f"deliver to {NAME}"},
    )
    piotr = await sent_invitation(mail_settings, catalog, 2)
    await post_answer(mail_app, mail_settings, anna, 1, FIRST)
    response = await Response.get(invitation_id=anna.id)
    await Response.filter(id=response.id).update(updated_at=datetime.now(UTC) - timedelta(minutes=10))
    await post_answer(mail_app, mail_settings, anna, 2, SECOND)
    await post_answer(mail_app, mail_settings, piotr, 5, KEPT_COMMENT)
    await flag(anna.survey_id, "honeypot", anna.id, 7)
    case = await FollowUpCase.get(response_id=response.id)
    async with sign_in(mail_app, "bob@example.com") as bob:
        await save(bob, f"/cases/{case.id}", note=NOTE)
    return anna, piotr, case


async def text_columns() -> list[tuple[str, str]]:
    """Every text or JSON column of every table, read from the database's own catalog."""
    if db.dialect() == "postgres":
        rows = await db.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
        )
        return [(t, c) for t, c in rows]
    found = []
    for (table,) in await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in await db.fetch(f'PRAGMA table_info("{table}")'):
            if any(kind in row[2].lower() for kind in TEXT_TYPES):
                found.append((table, row[1]))
    return found


async def holders(needle: str) -> list[str]:
    """table.column of every place that still holds `needle` (case-insensitive)."""
    found = []
    for table, column in await text_columns():
        sql = f'SELECT COUNT(*) FROM "{table}" WHERE LOWER(CAST("{column}" AS TEXT)) LIKE ?'  # noqa: S608
        [(count,)] = await db.fetch(sql, [f"%{needle.lower()}%"])
        if count:
            found.append(f"{table}.{column}")
    return found


async def rollup_rows() -> list[tuple]:
    return sorted(
        await DailyRollup.all().values_list(
            "day", "survey_id", "question_id", "dimension", "value", *(f"c{n}" for n in range(11))
        )
    )


async def test_the_search_finds_the_person_before_erasure(story):
    """The search of every text column is able to fail: before erasure it finds all of Anna."""
    assert len(await text_columns()) > 40
    for needle in NEEDLES:
        assert await holders(needle), needle


async def test_after_erasure_no_table_holds_her_email_name_or_words(story, mail_app):
    key = await make_key("privacy:write")
    async with _api(mail_app, key) as client:
        reply = await client.delete("/api/v1/contacts/C-1")
    assert reply.status_code == 200, reply.text
    for needle in NEEDLES:
        assert await holders(needle) == [], needle
    # Piotr is untouched
    assert await holders(KEPT_COMMENT) != []
    assert await Contact.filter(external_id="C-2", email="person2@example.com").exists()


async def test_erasure_keeps_the_scores_so_trends_do_not_move(story, mail_app, mail_settings):
    anna, _, _ = story
    analytics = await make_key("analytics:read")
    eraser = await make_key("privacy:write")
    survey = anna.survey_id
    async with _api(mail_app, analytics) as client:
        before = (await client.get(f"/api/v1/trends?survey={survey}")).json()
    rollups_before = await rollup_rows()
    assert rollups_before
    async with _api(mail_app, eraser) as client:
        assert (await client.delete("/api/v1/contacts/C-1")).status_code == 200
    async with _api(mail_app, analytics) as client:
        after = (await client.get(f"/api/v1/trends?survey={survey}")).json()
    assert after == before
    assert await rollup_rows() == rollups_before
    # a rebuild from the answers gives the same histograms: the answers kept what trends are made of
    await rollups.rebuild(mail_settings.segment_attributes)
    assert await rollup_rows() == rollups_before
    answer = await Response.get(invitation_id=anna.id)
    assert (answer.score, answer.comment, [h["comment"] for h in answer.history]) == (2, "", [""])
    assert [h["score"] for h in answer.history] == [1]


async def test_the_receipt_says_what_went_and_the_audit_log_keeps_it(story, mail_app):
    anna, _, case = story
    key = await make_key("privacy:write")
    async with _api(mail_app, key) as client:
        receipt = (await client.delete("/api/v1/contacts/C-1")).json()
    assert receipt["kind"] == "contact"
    assert receipt["external_id"] == "C-1"
    assert receipt["erased_by"] == "api key test system (" + key.split("_")[1] + ")"
    removed = receipt["removed"]
    assert removed["comments_blanked"] == 2  # the answer's comment and the one in its history
    assert removed["case_notes_deleted"] == 1
    assert removed["case_events_blanked"] >= 1  # "score changed" quoted the comment
    assert removed["emails_deleted"] >= 1
    assert removed["flagged_attempts_deleted"] == 1
    assert removed["loyalty_rows_deleted"] >= 2  # her latest answer and her standing in each scope
    assert removed["touchpoints_emptied"] == 1
    assert removed["webhook_deliveries_deleted"] >= 2  # response.recorded and case.opened, never delivered
    assert "Scores" in receipt["kept"]
    assert datetime.fromisoformat(receipt["erased_at"]) <= datetime.now(UTC)
    # what is left of her, and that the case is still there for the counts
    contact = await Contact.get(id=anna.contact_id)
    assert re.fullmatch(r"erased-[0-9a-f]{16}", contact.external_id)
    assert (contact.email, contact.name, contact.attributes, contact.opted_out_at is not None) == ("", "", {}, True)
    assert await Touchpoint.filter(contact_id=contact.id, attributes={}).count() == 1
    assert not await OutboxMessage.filter(invitation_id=anna.id).exists()
    assert not await FlaggedAttempt.filter(invitation_id=anna.id).exists()
    assert not await LoyaltyLatest.filter(contact_id=contact.id).exists()
    assert not await LoyaltyStanding.filter(contact_id=contact.id).exists()
    assert not await CaseNote.filter(case_id=case.id, kind="note").exists()
    assert await FollowUpCase.filter(id=case.id, score=2).exists()
    assert await LoyaltyLatest.filter(contact__external_id="C-2").exists()
    [entry] = await AuditEvent.filter(action="contact.erased")
    assert (entry.actor, entry.target, entry.details) == (receipt["erased_by"], "contact C-1", removed)


async def test_a_delivered_webhook_event_keeps_its_ids_but_loses_the_comment(story, mail_app):
    anna, _, _ = story
    await WebhookDelivery.all().update(status="delivered")
    key = await make_key("privacy:write")
    async with _api(mail_app, key) as client:
        receipt = (await client.delete("/api/v1/contacts/C-1")).json()
    assert receipt["removed"]["webhook_deliveries_deleted"] == 0
    recorded = [
        d.payload["data"]
        for d in await WebhookDelivery.filter(event="response.recorded")
        if d.payload["data"]["invitation_id"] == anna.id
    ]
    assert recorded and all(data["comment"] == "" for data in recorded)


async def test_an_erased_person_is_skipped_by_the_next_import_until_the_suppression_is_lifted(
    story, mail_app, mail_settings, catalog
):
    key = await make_key("privacy:write")
    async with _api(mail_app, key) as client:
        assert (await client.delete("/api/v1/contacts/C-1")).status_code == 200
    contacts = await Contact.all().count()
    occurred = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    # the CRM sends her again: by her address under a new id, and by her old id with a new address
    by_email = event(31, occurred_at=occurred, contact_external_id="C-99", contact_email=EMAIL.upper())
    by_id = event(32, occurred_at=occurred, contact_external_id="C-1", contact_email="new@example.org")
    other = event(33, occurred_at=occurred)
    outcomes = await ingest([by_email, by_id, other], catalog, mail_settings)
    assert [(o.status, o.reason) for o in outcomes[:2]] == [("skipped", "erased"), ("skipped", "erased")]
    assert outcomes[2].status == "invited"
    assert await Contact.all().count() == contacts + 1  # only the other person
    assert not await Touchpoint.filter(external_id__in=["T-31", "T-32"]).exists()
    assert await Suppression.all().count() == 2  # her address and her external id, as HMACs
    assert await holders(EMAIL) == []

    # she comes back with consent: lifting her address lifts her old id too
    async with _api(mail_app, key) as client:
        reply = await client.delete(f"/api/v1/suppressions/{EMAIL}")
        assert (reply.status_code, reply.json()) == (200, {"lifted": 2})
        missing = await client.delete(f"/api/v1/suppressions/{EMAIL}")
        assert missing.status_code == 404
        assert missing.json()["error"] == f"{EMAIL} is not on the suppression list."
    [again] = await ingest(
        [event(34, occurred_at=occurred, contact_external_id="C-1", contact_email=EMAIL)], catalog, mail_settings
    )
    assert again.status == "invited"
    assert await AuditEvent.filter(action="suppression.lifted", target=EMAIL).exists()


async def test_unknown_and_bad_ids_are_a_404_and_a_400_with_a_sentence(mail_app, org):
    key = await make_key("privacy:write")
    async with _api(mail_app, key) as client:
        unknown = await client.delete("/api/v1/contacts/C-404")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "No contact has the external id 'C-404'."
        unknown_employee = await client.delete("/api/v1/employees/E-404")
        assert unknown_employee.json()["error"] == "No employee has the external id 'E-404'."
        long = await client.delete("/api/v1/contacts/" + "x" * 201)
        assert long.status_code == 400
        assert "external_id" in long.json()["error"]
    reader = await make_key("privacy:read")
    async with _api(mail_app, reader) as client:
        refused = await client.delete("/api/v1/contacts/C-1")
    assert refused.status_code == 403
    assert refused.json()["error"] == "This API key lacks the privacy:write scope."
    assert not await AuditEvent.filter(action="contact.erased").exists()


async def employee_with_history(email: str = "ewa.staff@example.org") -> Employee:
    employee = await Employee.create(external_id="E-7", email=email, name="Ewa Stafford")
    now = datetime.now(UTC)
    round_ = await PulseRound.create(
        survey_id="enps", number=1, questions=["enps"], opens_at=now, remind_at=now, closes_at=now + timedelta(days=7)
    )
    invitation = await Invitation.create(
        survey_id="enps", employee=employee, round=round_, locale="en", status="sent", sent_at=now
    )
    await OutboxMessage.create(
        kind="pulse",
        invitation=invitation,
        to_email=email,
        locale="en",
        payload={"name": "Ewa Stafford"},
        status="sent",
        next_attempt_at=now,
        message_id="<pulse-e7@example.org>",
    )
    await PulseAnswer.create(round=round_, question_id="enps", score=8, comment="Good team")
    return employee


async def test_erasing_an_employee_removes_the_roster_row_and_invitations_and_keeps_anonymous_answers(mail_app, org):
    await employee_with_history()
    key = await make_key("privacy:write")
    async with _api(mail_app, key) as client:
        reply = await client.delete("/api/v1/employees/E-7")
    assert reply.status_code == 200, reply.text
    receipt = reply.json()
    assert receipt["kind"] == "employee"
    assert receipt["removed"]["roster_rows_deleted"] == 1
    assert receipt["removed"]["invitations_deleted"] == 1
    assert receipt["removed"]["emails_deleted"] == 1
    for needle in ("ewa.staff@example.org", "Ewa Stafford"):
        assert await holders(needle) == [], needle
    assert await PulseAnswer.filter(score=8, comment="Good team").count() == 1
    assert await AuditEvent.filter(action="employee.erased", target="employee E-7").exists()
    assert await Suppression.filter(kind="employee").count() == 2


def test_the_command_line_erases_an_employee_and_prints_the_receipt(database_url, tmp_path):
    import asyncio

    from tests.test_cli import pulse

    async def prepare() -> None:
        async with db.connected(database_url):
            await employee_with_history()

    asyncio.run(prepare())
    result = pulse("erase", "employee", "E-7", database_url=database_url)
    assert result.returncode == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert (receipt["kind"], receipt["erased_by"], receipt["removed"]["roster_rows_deleted"]) == (
        "employee",
        "command line",
        1,
    )
    again = pulse("erase", "employee", "E-7", database_url=database_url)
    assert again.returncode == 1
    assert again.stderr.strip() == "Error: No employee has the external id 'E-7'."
    roster = tmp_path / "roster.csv"
    roster.write_text("external_id,email,name\nE-7,ewa.staff@example.org,Ewa Stafford\n", encoding="utf-8")
    imported = pulse("import", "employees", str(roster), "--quiet", database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    assert "0 created" in imported.stdout and "1 skipped (erased people)." in imported.stdout
    lifted = pulse("erase", "lift", "E-7", database_url=database_url)
    assert lifted.returncode == 0, lifted.stderr
    assert "Lifted the suppression of E-7 (2 entries)" in lifted.stdout


async def test_the_dev_mail_catcher_forgets_mail_to_an_erased_address():
    catcher = MailCatcher(port=0)
    for to in (EMAIL, "someone@example.org", EMAIL.upper()):
        envelope = Envelope()
        envelope.mail_from = "pulse@example.com"
        envelope.rcpt_tos = [to]
        envelope.original_content = b"Subject: hi\r\n\r\nhello\r\n"
        await catcher.handle_DATA(None, None, envelope)
    assert privacy.forget_mail(catcher, EMAIL) == 2
    assert [m.recipients for m in catcher.mails()] == [("someone@example.org",)]
    assert privacy.forget_mail(None, EMAIL) == 0


def _api(app, key: str):
    import httpx

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    )


async def test_an_admin_erases_from_the_contact_page_after_typing_the_crm_id(story, mail_app):
    async with sign_in(mail_app, "bob@example.com") as bob:
        assert "/contacts/C-1/erase" not in (await bob.get("/contacts/C-1")).text
        assert (await bob.get("/contacts/C-1/erase")).status_code == 403
    async with sign_in(mail_app, "alice@example.com") as alice:
        assert 'href="/contacts/C-1/erase"' in (await alice.get("/contacts/C-1")).text
        form = await alice.get("/contacts/C-1/erase")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        wrong = await alice.post("/contacts/C-1/erase", data={"csrf_token": token, "confirm": "C-2"})
        assert wrong.status_code == 400
        assert "Type the CRM id exactly as shown to confirm the erasure." in wrong.text
        assert await Contact.filter(external_id="C-1").exists()
        no_token = await alice.post("/contacts/C-1/erase", data={"confirm": "C-1"})
        assert no_token.status_code == 400
        done = await alice.post("/contacts/C-1/erase", data={"csrf_token": token, "confirm": "C-1"})
        assert done.status_code == 200, done.text
        assert "Customer C-1 was erased on" in done.text
        assert re.search(r"Comments blanked, with their earlier versions</th><td>2</td>", done.text)
        assert (await alice.get("/contacts/C-1")).status_code == 404
    for needle in NEEDLES:
        assert await holders(needle) == [], needle
    assert await AuditEvent.filter(action="contact.erased", actor="alice@example.com", target="contact C-1").exists()


async def test_the_roster_import_skips_an_erased_employee_until_lifted(mail_app, org):
    await employee_with_history()
    eraser = await make_key("privacy:write")
    importer = await make_key("employees:write")
    async with _api(mail_app, eraser) as client:
        assert (await client.delete("/api/v1/employees/E-7")).status_code == 200
    rows = [
        {"external_id": "E-70", "email": "EWA.STAFF@example.org", "name": "Ewa S."},
        {"external_id": "E-7", "email": "someone.new@example.org", "name": "New"},
        {"external_id": "E-8", "email": "other@example.org", "name": "Other"},
    ]
    async with _api(mail_app, importer) as client:
        reply = await client.post("/api/v1/employees", json=rows)
    assert [r["status"] for r in reply.json()["results"]] == ["erased", "erased", "created"]
    assert await Employee.all().values_list("external_id", flat=True) == ["E-8"]
    async with _api(mail_app, eraser) as client:
        assert (await client.delete("/api/v1/suppressions/E-7")).json() == {"lifted": 2}
    async with _api(mail_app, importer) as client:
        reply = await client.post("/api/v1/employees", json=rows[:1])
    assert reply.json()["results"][0]["status"] == "created"
