"""Each at-risk signal fires on the data it looks for, stays quiet otherwise, reads only the past of its moment and
only the teams it is given; each reason reads as a sentence with its numbers and dates."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from pulse import risk, risk_config
from pulse.models import Contact, FollowUpCase, Invitation, Response, Team, Touchpoint

NOW = datetime.now(UTC).replace(microsecond=0)
_numbers = itertools.count(1)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
async def teams(app) -> dict[str, Team]:
    care = await Team.create(slug="customer-care", name="Customer Care")
    warsaw = await Team.create(slug="support-warsaw", name="Support Warsaw", parent=care)
    milan = await Team.create(slug="support-milan", name="Support Milan", parent=care)
    return {"care": care, "warsaw": warsaw, "milan": milan}


async def customer(name: str, first_purchase: datetime | None = None, plan: str = "pro") -> Contact:
    return await Contact.create(
        external_id=f"C-{name}", name=name, email=f"{name}@example.com", first_purchase_at=first_purchase,
        attributes={"plan": plan},
    )  # fmt: skip


async def touch(contact: Contact, team: Team, when: datetime, kind: str = "support_ticket_closed") -> Touchpoint:
    number = next(_numbers)
    return await Touchpoint.create(
        source="test", external_id=f"E-{number}", type=kind, occurred_at=when, contact=contact, team=team
    )


async def sent(contact: Contact, team: Team, when: datetime, survey: str = "csat") -> Invitation:
    point = await touch(contact, team, when - timedelta(hours=1))
    return await Invitation.create(
        survey_id=survey, contact=contact, touchpoint=point, locale="en", status="sent", send_at=when, sent_at=when
    )


async def answer(contact: Contact, team: Team, survey: str, score: int, when: datetime) -> Response:
    invitation = await sent(contact, team, when - timedelta(hours=2), survey)
    await Invitation.filter(id=invitation.id).update(status="answered", answered_at=when)
    question = {"csat": "satisfaction", "nps": "recommend", "ces": "effort"}[survey]
    return await Response.create(
        survey_id=survey, invitation=invitation, question_id=question, score=score, locale="en", answered_at=when,
        day=when.date(), confirmed=True, team=team, dimensions={},
    )  # fmt: skip


async def case(contact: Contact, team: Team, response: Response | None, status: str, opened: datetime, **times):
    found = await FollowUpCase.create(
        contact=contact,
        team=team,
        response=response,
        status=status,
        due_at=times.get("due", opened + timedelta(days=2)),
    )
    await FollowUpCase.filter(id=found.id).update(created_at=opened, updated_at=times.get("changed", opened))
    return found


async def reasons(app, as_of: datetime | None = None, team_ids=None, config=None) -> dict[str, dict[str, risk.Reason]]:
    """{contact name: {signal: reason}} of everyone with a signal."""
    config = config or risk_config.defaults()
    found = await risk.assess(app.state.catalog, config, as_of or NOW, team_ids)
    names = dict(await Contact.all().values_list("id", "name"))
    return {names[c]: {r.signal: r for r in person.reasons} for c, person in found.items()}


async def test_a_falling_score_is_told_against_the_customers_own_earlier_answers(app, teams):
    ann = await customer("ann")
    for score, days in ((9, 100), (10, 60), (7, 5)):
        await answer(ann, teams["warsaw"], "nps", score, days_ago(days))
    steady = await customer("steady")
    for score, days in ((9, 100), (8, 5)):
        await answer(steady, teams["warsaw"], "nps", score, days_ago(days))
    found = await reasons(app)
    drop = found["ann"]["score_drop"]
    assert (drop.points, drop.data["earlier_average"], drop.data["earlier_answers"]) == (25, 9.5, 2)
    assert "detractor" not in found["ann"]  # 7 is passive: fell, but not unhappy
    assert "score_drop" not in found.get("steady", {})  # one point down is no fall
    text = risk.reason_text(drop, "en", app.state.catalog, "Acme", risk_config.defaults())
    assert text == (
        f"Net Promoter Score (NPS) score 7 on {days_ago(5):%b} {days_ago(5).day}, {days_ago(5).year}, down from 9.5 on"
        " average in 2 earlier answers."
    )
    assert "9,5" in risk.reason_text(drop, "pl", app.state.catalog, "Acme", risk_config.defaults())  # Babel numbers


async def test_an_answer_well_below_the_segment_is_told_with_the_segments_average(app, teams):
    config = risk_config.parse(b"[below_segment]\nmin_answers = 3\n", "risk.toml")
    for name in ("a", "b", "c"):
        await answer(await customer(name), teams["warsaw"], "csat", 5, days_ago(30))
    low = await customer("low")
    await answer(low, teams["warsaw"], "csat", 3, days_ago(3))
    other_plan = await customer("basic", plan="basic")
    await answer(other_plan, teams["warsaw"], "csat", 3, days_ago(3))  # alone in its segment: nothing to compare
    found = await reasons(app, config=config)
    below = found["low"]["below_segment"]
    assert (below.data["segment"], below.data["segment_average"], below.data["segment_answers"]) == ("pro", 4.5, 4)
    assert "basic" not in found


async def test_surveys_sent_lately_and_none_answered_count_after_a_grace_period(app, teams):
    quiet = await customer("quiet")
    await sent(quiet, teams["warsaw"], days_ago(40))
    await sent(quiet, teams["warsaw"], days_ago(20))
    fresh = await customer("fresh")
    await sent(fresh, teams["warsaw"], days_ago(20))
    await sent(fresh, teams["warsaw"], days_ago(3))  # may still be answered
    answers = await customer("answers")
    await sent(answers, teams["warsaw"], days_ago(40))
    await sent(answers, teams["warsaw"], days_ago(30))
    await answer(answers, teams["warsaw"], "csat", 5, days_ago(10))  # answered one sent later: still talking to us
    found = await reasons(app)
    assert found["quiet"]["unanswered"].data["surveys"] == 2
    assert "unanswered" not in found.get("fresh", {})
    assert "unanswered" not in found.get("answers", {})


async def test_fewer_touchpoints_than_the_customers_own_rhythm(app, teams):
    gone = await customer("gone")
    for days in range(360, 110, -20):  # every 20 days for most of a year, nothing in the last 110 days
        await touch(gone, teams["warsaw"], days_ago(days))
    regular = await customer("regular")
    for days in range(360, 0, -20):
        await touch(regular, teams["warsaw"], days_ago(days))
    newcomer = await customer("newcomer")
    await touch(newcomer, teams["warsaw"], days_ago(130))
    await touch(newcomer, teams["warsaw"], days_ago(125))
    found = await reasons(app)
    quieter = found["gone"]["fewer_touchpoints"]
    assert quieter.data["touchpoints"] == 0 and quieter.data["usual"] > 4
    assert "fewer_touchpoints" not in found.get("regular", {})
    assert "fewer_touchpoints" not in found.get("newcomer", {})  # too new to have a rhythm


async def test_open_and_overdue_cases_and_unhappy_answers_without_a_resolved_case(app, teams):
    waiting = await customer("waiting")
    low = await answer(waiting, teams["warsaw"], "csat", 1, days_ago(10))
    await case(waiting, teams["warsaw"], low, "open", days_ago(10), due=days_ago(8))
    helped = await customer("helped")
    low = await answer(helped, teams["warsaw"], "csat", 2, days_ago(10))
    await case(helped, teams["warsaw"], low, "resolved", days_ago(10), changed=days_ago(9))
    found = await reasons(app)
    assert found["waiting"]["open_case"].points == 25  # 15, and 10 more for being overdue
    assert found["waiting"]["detractor"].points == 30
    assert "helped" not in found
    # a year ago the resolved case was still open, and the answer was unhappy without a resolved case
    before = await reasons(app, as_of=days_ago(9.5))
    assert set(before["helped"]) == {"open_case", "detractor"}
    text = risk.reason_text(found["waiting"]["open_case"], "en", app.state.catalog, "Acme", risk_config.defaults())
    assert text.startswith("1 open case, opened on ") and "overdue since" in text


async def test_complaints_count_only_after_the_first_purchase(app, teams):
    angry = await customer("angry", first_purchase=days_ago(200))
    await touch(angry, teams["warsaw"], days_ago(220), "complaint_closed")  # before buying: not after the sale
    for days in (30, 20, 10):
        await touch(angry, teams["warsaw"], days_ago(days), "complaint_closed")
    prospect = await customer("prospect")
    await touch(prospect, teams["warsaw"], days_ago(10), "complaint_closed")
    found = await reasons(app)
    complaints = found["angry"]["complaints"]
    assert (complaints.data["complaints"], complaints.points) == (3, 20)  # 10 each, at most 2 counted
    assert "prospect" not in found


async def test_the_past_is_scored_with_only_what_was_known_then(app, teams):
    late = await customer("late")
    await answer(late, teams["warsaw"], "nps", 10, days_ago(100))
    await answer(late, teams["warsaw"], "nps", 2, days_ago(5))
    assert "late" in await reasons(app)
    assert "late" not in await reasons(app, as_of=days_ago(50))


async def test_a_managers_view_reads_only_their_teams_rows(app, teams):
    both = await customer("both")
    low = await answer(both, teams["milan"], "csat", 1, days_ago(5))
    await case(both, teams["milan"], low, "open", days_ago(5))
    await answer(both, teams["warsaw"], "csat", 5, days_ago(4))
    everyone = await reasons(app)
    assert {"detractor", "open_case"} <= set(everyone["both"])
    warsaw = await reasons(app, team_ids={teams["warsaw"].id})
    assert "both" not in warsaw
    milan = await reasons(app, team_ids={teams["milan"].id})
    assert {"detractor", "open_case"} <= set(milan["both"])


async def test_the_list_holds_those_at_the_threshold_riskiest_first(app, teams):
    for name, days in (("one", 10), ("two", 5)):
        person = await customer(name)
        low = await answer(person, teams["warsaw"], "csat", 1, days_ago(days))
        await case(person, teams["warsaw"], low, "open", days_ago(days), due=NOW + timedelta(days=1))
    lone = await customer("lone")
    await answer(lone, teams["warsaw"], "csat", 2, days_ago(3))  # 30 points: under the threshold of 40
    config = risk_config.defaults()
    listed = risk.listed(await risk.assess(app.state.catalog, config, NOW), config)
    names = dict(await Contact.all().values_list("id", "name"))
    assert [(names[r.contact_id], r.points) for r in listed] == [("two", 45), ("one", 45)]  # newer reason first


async def test_a_case_counts_as_resolved_from_its_status_note_not_its_last_edit(app, teams):
    from pulse.models import CaseNote

    noted = await customer("noted")
    low = await answer(noted, teams["warsaw"], "csat", 1, days_ago(30))
    found = await case(noted, teams["warsaw"], low, "resolved", days_ago(30), changed=days_ago(2))  # edited lately
    note = await CaseNote.create(case=found, kind="status", body="", data={"from": "open", "to": "resolved"})
    await CaseNote.filter(id=note.id).update(created_at=days_ago(28))
    assert "noted" not in await reasons(app, as_of=days_ago(10))  # resolved 28 days ago, whatever changed since
    assert {"open_case", "detractor"} <= set((await reasons(app, as_of=days_ago(29)))["noted"])
