"""Follow-up cases: the team owner gets each unhappy answer with a due date; overdue cases escalate once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pulse import followups, i18n
from pulse.models import CaseNote, FollowUpCase, OutboxMessage, Response, Team, User
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import old_nonce, sent_invitation, survey_url

UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (datetime(2026, 12, 2, 10, tzinfo=UTC), datetime(2026, 12, 4, 10, tzinfo=UTC)),  # Wednesday -> Friday
        (datetime(2026, 12, 4, 10, tzinfo=UTC), datetime(2026, 12, 8, 10, tzinfo=UTC)),  # Friday -> Tuesday
        (datetime(2026, 12, 5, 15, tzinfo=UTC), datetime(2026, 12, 9, 9, tzinfo=UTC)),  # Saturday -> Wednesday 9:00
    ],
)
def test_due_dates_count_business_days(start, due):
    assert followups.add_business_days(start, 2, UTC_ZONE) == due


async def answer(client, settings, invitation, score, comment="It took a week"):
    data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    reply = await client.post(survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"})
    assert reply.status_code == 200


async def test_an_unhappy_answer_opens_a_case_for_the_team_owner_with_a_localized_email(
    mail_client, mail_settings, catalog, org, smtp
):
    invitation = await sent_invitation(mail_settings, catalog)
    await answer(mail_client, mail_settings, invitation, 1, "Nobody <b>called</b> back")
    case = await FollowUpCase.get().select_related("owner")
    assert case.owner.email == "bob@example.com"
    assert case.due_at > datetime.now(UTC) + timedelta(days=1)
    await Dispatcher(mail_settings, catalog, environment()).step()
    [mail] = smtp.by_recipient("bob@example.com")
    assert mail["Subject"] == i18n.translate(
        "pl",
        "An unhappy answer needs you: %(score)s of %(top)s in %(survey)s",
        score=1,
        top=5,
        survey=catalog.get("csat").title["pl"],
    )
    html = mail.get_body(("html",)).get_content()
    assert "Nobody &lt;b&gt;called&lt;/b&gt; back" in html
    assert f"http://testserver/cases/{case.id}" in html


async def test_a_happy_answer_opens_no_case(mail_client, mail_settings, catalog, org):
    invitation = await sent_invitation(mail_settings, catalog)
    await answer(mail_client, mail_settings, invitation, 5, "Great")
    assert await FollowUpCase.all().count() == 0
    assert await followups.orphans(catalog) == {"unhappy_answers_without_case": 0, "open_cases_without_owner": 0}


async def test_a_team_without_owner_falls_back_to_the_parent_then_the_default_owner(
    mail_client, mail_settings, catalog, org
):
    await Team.filter(id=org.warsaw.id).update(owner_id=None)
    invitation = await sent_invitation(mail_settings, catalog)
    await answer(mail_client, mail_settings, invitation, 1)
    assert (await FollowUpCase.get()).owner_id == org.care_lead.id
    orphan_team = await Team.create(slug="nobodys", name="Nobody's")
    other = await sent_invitation(mail_settings, catalog, 2, team=orphan_team.slug)
    await answer(mail_client, mail_settings, other, 2)
    assert (await FollowUpCase.get(response__invitation_id=other.id)).owner_id == org.admin.id  # the first admin


async def test_an_overdue_case_escalates_to_the_parent_owner_once(mail_client, mail_settings, catalog, org):
    invitation = await sent_invitation(mail_settings, catalog)
    await answer(mail_client, mail_settings, invitation, 1)
    case = await FollowUpCase.get()
    later = case.due_at + timedelta(hours=1)
    assert await followups.escalate_overdue(mail_settings, now=case.due_at - timedelta(minutes=1)) == 0
    assert await followups.escalate_overdue(mail_settings, now=later) == 1
    assert await followups.escalate_overdue(mail_settings, now=later + timedelta(days=3)) == 0  # once
    [message] = await OutboxMessage.filter(kind="case_escalated")
    assert message.to_email == "carol@example.com"
    assert (await FollowUpCase.get(id=case.id)).escalated_at == later
    carol = await User.get(email="carol@example.com")
    stored = await CaseNote.filter(case_id=case.id).values_list("kind", "data", "body")
    assert stored == [("escalated", {"user_id": carol.id}, "")]  # an event, told in each reader's language


async def test_status_changes_follow_the_lifecycle(mail_client, mail_settings, catalog, org):
    invitation = await sent_invitation(mail_settings, catalog)
    await answer(mail_client, mail_settings, invitation, 1)
    case = await FollowUpCase.get()
    await followups.update_case(
        case, mail_settings, status="in_progress", note="Called, left a message", author=org.warsaw_lead
    )
    await followups.update_case(case, mail_settings, status="resolved")
    with pytest.raises(followups.Conflict, match=r"A case that is resolved cannot become in_progress\."):
        await followups.update_case(case, mail_settings, status="in_progress")
    await followups.update_case(case, mail_settings, status="open")  # reopened
    stored = await CaseNote.filter(case_id=case.id).order_by("id").values_list("kind", "data", "body")
    assert stored == [
        ("status", {"from": "open", "to": "in_progress"}, ""),
        ("note", {}, "Called, left a message"),
        ("status", {"from": "in_progress", "to": "resolved"}, ""),
        ("status", {"from": "resolved", "to": "open"}, ""),
    ]


async def test_no_complaint_is_orphaned(mail_client, mail_settings, catalog, org):
    for number, score in enumerate((1, 2, 4, 5, 1), start=1):
        invitation = await sent_invitation(mail_settings, catalog, number)
        await answer(mail_client, mail_settings, invitation, score)
    assert await Response.filter(confirmed=True).count() == 5
    assert await FollowUpCase.all().count() == 3
    assert await followups.orphans(catalog) == {"unhappy_answers_without_case": 0, "open_cases_without_owner": 0}
