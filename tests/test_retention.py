"""The retention policy: what the dry run counts is what the run blanks or deletes, batch by batch; recent data and
every score stay (trends equal before and after); 0 keeps a kind forever; the worker runs it once a day, whatever
the number of workers, and each run is in the audit log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from pulse import audit, retention, rollups, worker
from pulse.models import (
    AuditEvent,
    CaseNote,
    Contact,
    FlaggedAttempt,
    FollowUpCase,
    OutboxMessage,
    PulseAnswer,
    PulseRound,
    Response,
    Session,
    Touchpoint,
    User,
    WebhookDelivery,
)
from pulse.responses import Answer, invited, record_invitation_answer
from tests.conftest import ROOT, sent_invitation

NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = retention.Policy(comments_days=730, touchpoints_days=730, contact_days=1095, logs_days=90, audit_days=730)
EXPECTED = {
    "comments": 2,  # the answers of 1,200 and 800 days ago (one with an earlier comment in its history)
    "pulse_comments": 1,
    "case_notes": 2,  # a person's note and a "score changed" note quoting the comment
    "touchpoints": 2,
    "contacts": 1,  # only the one not seen for 1,200 days
    "outbox": 2,  # sent and failed 100 days ago; the pending one waits
    "webhooks": 1,
    "flagged_attempts": 1,
    "sessions": 1,
    "audit": 1,
}


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def answered(settings, catalog, number: int, days: float, comment: str) -> Response:
    """A contact whose touchpoint, answer (with a comment) and contact row are all `days` old."""
    invitation = await sent_invitation(settings, catalog, number, contact_attributes={"plan": "gold"})
    survey = catalog.get("csat")
    when = datetime.now(UTC)
    answer = Answer(score=2, comment=comment, locale="en", rendered_at=when.timestamp() - 5)
    await record_invitation_answer(await invited(invitation.id), survey, answer, settings, now=when)
    response = await Response.get(invitation_id=invitation.id)
    history = [{"score": 4, "comment": f"earlier {comment}", "at": ago(days + 1).isoformat(), "until": ""}]
    await Response.filter(id=response.id).update(answered_at=ago(days), created_at=ago(days), history=history)
    await Touchpoint.filter(id=invitation.touchpoint_id).update(
        occurred_at=ago(days), agent="Marta Nowak", attributes={"order": f"O-{number}"}
    )
    await Contact.filter(id=invitation.contact_id).update(created_at=ago(days), updated_at=ago(days))
    return await Response.get(id=response.id)


async def build(settings, catalog) -> dict:
    old = await answered(settings, catalog, 1, 1200, "old words")
    middle = await answered(settings, catalog, 2, 800, "middle words")
    recent = await answered(settings, catalog, 3, 10, "recent words")
    user = await User.create(email="hr@example.com", role="hr", password_hash="x")
    case = await FollowUpCase.create(response_id=old.id, contact_id=None, due_at=ago(1199), survey_id="csat", score=2)
    for days, kind, body, data in [
        (1199, "note", "Called Ann Smith, she was upset", {}),
        (1199, "score_changed", "", {"from": 4, "to": 2, "survey": "csat", "comment": "old words"}),
        (1199, "status", "", {"from": "open", "to": "resolved"}),
        (5, "note", "Followed up again", {}),
    ]:
        note = await CaseNote.create(case=case, author=user, kind=kind, body=body, data=data)
        await CaseNote.filter(id=note.id).update(created_at=ago(days))
    for number, closes, comment in [(1, ago(800), "the canteen"), (2, ago(3), "the new desks")]:
        pulse_round = await PulseRound.create(
            survey_id="pulse", number=number, questions=[], opens_at=closes, remind_at=closes, closes_at=closes
        )
        await PulseAnswer.create(id=uuid.uuid4(), round=pulse_round, question_id="q", score=7, comment=comment)
    for days, status in [(100, "sent"), (100, "failed"), (100, "pending"), (10, "sent")]:
        message = await OutboxMessage.create(
            kind="invitation",
            to_email="person1@example.com",
            locale="en",
            status=status,
            next_attempt_at=ago(-1 if status == "pending" else days),
            message_id=f"<{uuid.uuid4()}@pulse>",
        )
        await OutboxMessage.filter(id=message.id).update(created_at=ago(days))
    for days, status in [(100, "delivered"), (100, "pending"), (10, "delivered")]:
        delivery = await WebhookDelivery.create(
            event="x", payload={"comment": "old words"}, status=status, next_attempt_at=ago(days)
        )
        await WebhookDelivery.filter(id=delivery.id).update(created_at=ago(days))
    for days in (100, 10):
        flagged = await FlaggedAttempt.create(survey_id="csat", reason="too_fast", score=3)
        await FlaggedAttempt.filter(id=flagged.id).update(created_at=ago(days))
    for days in (100, -1):
        await Session.create(
            token_hash=uuid.uuid4().hex, user=user, last_seen_at=ago(days), expires_at=ago(days), client="10.0.0.1"
        )
    await audit.record("signin.ok", actor="hr@example.com", at=ago(800))
    await audit.record("signin.ok", actor="hr@example.com", at=ago(10))
    return {"old": old, "middle": middle, "recent": recent}


async def trend_state(settings) -> tuple:
    scores = await Response.all().order_by("id").values_list("id", "score", "day", "team_id", "dimensions")
    return scores, await rollups.stored()


async def test_the_dry_run_counts_what_the_run_removes_and_recent_data_stays(mail_app, mail_settings, catalog):
    made = await build(mail_settings, catalog)
    before = await trend_state(mail_settings)
    assert before[1], "the answers are in the rollups"

    planned = await retention.plan(POLICY, NOW)
    assert planned == EXPECTED
    assert await retention.apply(POLICY, NOW, batch=1) == planned  # one row per transaction: many batches
    assert await retention.plan(POLICY, NOW) == dict.fromkeys(EXPECTED, 0)  # nothing left to do

    for which in ("old", "middle"):
        response = await Response.get(id=made[which].id)
        assert response.comment == "" and [e["comment"] for e in response.history] == [""]
        assert response.score == 2 and response.history[0]["score"] == 4
    recent = await Response.get(id=made["recent"].id)
    assert recent.comment == "recent words" and recent.history[0]["comment"] == "earlier recent words"

    contacts = {c.external_id: c for c in await Contact.all()}
    assert (contacts["C-1"].email, contacts["C-1"].name, contacts["C-1"].attributes) == ("", "", {})
    assert contacts["C-2"].email == "person2@example.com" and contacts["C-3"].name == "Person 3"
    touchpoints = {t.external_id: t for t in await Touchpoint.all()}
    assert (touchpoints["T-1"].agent, touchpoints["T-1"].attributes) == (None, {})
    assert touchpoints["T-1"].type == "support_ticket_closed"  # the event stays, for what points at it
    assert touchpoints["T-3"].agent == "Marta Nowak"

    notes = await CaseNote.all().order_by("id")
    assert [n.body for n in notes] == ["", "", "", "Followed up again"]
    assert notes[1].data == {"from": 4, "to": 2, "survey": "csat"}
    assert notes[2].data == {"from": "open", "to": "resolved"}
    assert sorted(await PulseAnswer.all().values_list("comment", flat=True)) == ["", "the new desks"]
    mine = OutboxMessage.filter(created_at__lt=ago(5))  # not the invitations' own e-mails
    assert sorted(await mine.values_list("status", flat=True)) == ["pending", "sent"]
    assert sorted(await WebhookDelivery.all().values_list("status", flat=True)) == ["delivered", "pending"]
    assert await FlaggedAttempt.all().count() == 1 and await Session.all().count() == 1
    assert await AuditEvent.all().count() == 1

    assert await trend_state(mail_settings) == before  # scores and rollups as they were
    await rollups.rebuild(mail_settings.segment_attributes)
    assert await trend_state(mail_settings) == before  # and a rebuild from the answers agrees


async def test_zero_keeps_a_kind_forever(mail_app, mail_settings, catalog):
    await build(mail_settings, catalog)
    keep = retention.Policy(comments_days=0, touchpoints_days=0, contact_days=0, logs_days=90, audit_days=0)
    assert await retention.plan(keep, NOW) == {
        **dict.fromkeys(EXPECTED, 0),
        **{k: EXPECTED[k] for k in ("outbox", "webhooks", "flagged_attempts", "sessions")},
    }
    await retention.apply(keep, NOW)
    assert sorted(await Response.all().values_list("comment", flat=True)) == [
        "middle words",
        "old words",
        "recent words",
    ]
    assert await Contact.filter(email="").count() == 0
    assert await Touchpoint.filter(agent=None).count() == 0
    assert await AuditEvent.all().count() == 2


async def test_batches_smaller_than_the_data_still_remove_all_of_it(app):
    for n in range(7):
        flagged = await FlaggedAttempt.create(survey_id="csat", reason="honeypot", score=n)
        await FlaggedAttempt.filter(id=flagged.id).update(created_at=ago(91 + n))
    await FlaggedAttempt.create(survey_id="csat", reason="honeypot", score=9)
    assert (await retention.plan(POLICY, NOW))["flagged_attempts"] == 7
    assert (await retention.apply(POLICY, NOW, batch=3))["flagged_attempts"] == 7
    assert await FlaggedAttempt.all().values_list("score", flat=True) == [9]


async def test_the_worker_runs_it_once_a_day_and_audits_each_run(mail_app, mail_settings, catalog):
    assert "retention" in worker.steps(mail_settings, catalog)
    await build(mail_settings, catalog)
    # two workers at the same moment: one runs it
    await asyncio.gather(retention.daily(mail_settings, NOW), retention.daily(mail_settings, NOW))
    await retention.daily(mail_settings, NOW + timedelta(hours=23))
    runs = await AuditEvent.filter(action="retention.run").order_by("id")
    assert len(runs) == 1
    assert runs[0].actor == "worker" and runs[0].details == EXPECTED
    assert await Response.filter(comment="old words").count() == 0

    await retention.daily(mail_settings, NOW + timedelta(hours=25))
    runs = await AuditEvent.filter(action="retention.run").order_by("id")
    assert len(runs) == 2 and runs[1].details == dict.fromkeys(EXPECTED, 0)


def pulse_command(settings, *args: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": settings.database_url,
        "PULSE_SECRET_KEY": settings.secret_key,
        "PULSE_SURVEYS_DIR": settings.surveys_dir,
    }
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", "retention", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=120,
    )


async def test_the_command_prints_what_would_go_then_removes_it(mail_app, mail_settings, catalog):
    await build(mail_settings, catalog)
    # the command runs now, not at NOW: the answers of 1,200 and 800 days ago are as old
    dry = await asyncio.to_thread(pulse_command, mail_settings, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would blank or delete (dry run; nothing changed):" in dry.stdout
    assert "  comments                  2  (PULSE_RETAIN_COMMENTS_DAYS=730)" in dry.stdout
    assert await Response.filter(comment="old words").count() == 1
    assert await AuditEvent.filter(action="retention.run").count() == 0

    done = await asyncio.to_thread(pulse_command, mail_settings)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == dry.stdout.splitlines()[1:]
    assert await Response.filter(comment="old words").count() == 0
    [event] = await AuditEvent.filter(action="retention.run")
    assert event.actor == "command line" and event.details["comments"] == 2


async def test_two_running_workers_apply_it_once(mail_app, mail_settings, catalog):
    await build(mail_settings, catalog)
    settings = mail_settings.replace(worker_interval=1)
    async with worker.running(settings, catalog), worker.running(settings, catalog):
        for _ in range(100):
            if await AuditEvent.filter(action="retention.run").exists():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # two more loops of each worker
    [run] = await AuditEvent.filter(action="retention.run")
    assert run.actor == "worker" and run.details == EXPECTED
    assert await retention.plan(POLICY) == dict.fromkeys(EXPECTED, 0)
