"""The loyalty quadrant reads each contact's latest answers from `loyalty_latest`, kept in step with the answers:
the table equals a recomputation from the answers after answers, changes, late confirmations and flurries, and
the quadrant shows the same numbers as the window query over every answer; migration 0011 fills it."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse import db, insights, loyalty, responses
from pulse.models import Contact, Invitation, LoyaltyLatest, Response, Team, Touchpoint
from tests.conftest import old_nonce, survey_url

NUMBERS = itertools.count(1)
EVER = date(2000, 1, 1)  # a period covering every answer


async def invitations_of(contact: Contact, survey_id: str, teams: list) -> list[Invitation]:
    """One sent invitation to `survey_id` per team (None: a touchpoint of no team)."""
    now = datetime.now(UTC)
    found = []
    for team in teams:
        touchpoint = await Touchpoint.create(
            source="crm", external_id=f"T-{next(NUMBERS)}", type="support_ticket_closed", occurred_at=now,
            contact=contact, team=team, channel="phone",
        )  # fmt: skip
        invitation = await Invitation.create(
            survey_id=survey_id, contact=contact, touchpoint=touchpoint, locale="en", status="sent",
            sent_at=now, expires_at=now + timedelta(days=30),
        )  # fmt: skip
        found.append(invitation)
    return found


async def answer(client, mail_settings, invitation: Invitation, score: int, comment: str | None = None) -> None:
    data = {"score": str(score), "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    if comment is not None:
        data["comment"] = comment
    reply = await client.post(survey_url(mail_settings, invitation.id), data=data)
    assert reply.status_code == 200, reply.text


async def same_quadrants(catalog, org) -> None:
    """The tables' quadrant equals the window query's, for everyone and for each manager's scope (a team with its
    sub-teams: one scope of loyalty_standing; two sibling teams: two scopes merged; a team without its sub-teams:
    loyalty_latest), and the dashboard's counts and pages of one scope equal it too."""
    assert await loyalty.stored_standings() == await loyalty.expected_standings()
    care = subtree(org)
    for teams in (None, {org.warsaw.id}, {org.milan.id}, {org.warsaw.id, org.milan.id}, {org.care.id}, care):
        window = await insights.quadrant_from_answers(catalog, teams, EVER)
        assert await insights.quadrant(catalog, teams) == window, teams
        assert await insights.quadrant(catalog, teams, EVER) == window, teams
    for teams, scope in (
        (None, 0),
        ({org.warsaw.id}, org.warsaw.id),
        ({org.milan.id}, org.milan.id),
        (care, org.care.id),
    ):
        window = await insights.quadrant_from_answers(catalog, teams, EVER)
        found = await insights.standing(catalog, scope)
        assert [found[k] for k in ("counts", "shares", "contacts")] == [
            window[k] for k in ("counts", "shares", "contacts")
        ]
        pages = [await insights.standing_page(found, first, 2) for first in range(0, found["listed"] + 2, 2)]
        assert [person for page in pages for person in page] == window["satisfied_not_loyal"], teams
        csv_rows = [line async for line in insights.csv_chunks(found, batch=2)]  # keyset pages of 2
        assert b"".join(csv_rows) == b"".join([line async for line in insights.csv_chunks(window)]), teams


def subtree(org) -> set[int]:
    """Customer Care with its sub-teams: the ids the dashboard's team filter gives for it."""
    return {org.care.id, org.warsaw.id, org.milan.id}


async def people(org) -> list[Invitation]:
    """Three customers, each with CSAT and NPS invitations from Warsaw, Milan and no team."""
    found = []
    for n in range(3):
        contact = await Contact.create(external_id=f"Q-{next(NUMBERS)}", name=f"Q {n}", email=f"q{n}@x.io")
        for survey_id in ("csat", "nps"):
            found += await invitations_of(contact, survey_id, [org.warsaw, org.milan, None])
    return found


steps = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.integers(0, 17), st.integers(1, 10), st.booleans()),
        st.tuples(st.just("confirm"), st.integers(0, 10)),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
async def test_the_table_equals_a_recomputation_and_the_quadrant_the_window_query(
    mail_client, mail_settings, catalog, org, history
):
    invitations = await people(org)
    later = datetime.now(UTC)
    for step in history:
        if step[0] == "answer":
            _, which, score, with_comment = step
            invitation = invitations[which]
            score = min(score, 5) if invitation.survey_id == "csat" else score
            await answer(mail_client, mail_settings, invitation, score, "why" if with_comment else None)
        else:
            later += timedelta(seconds=step[1])
            await responses.confirm_due(catalog, mail_settings, now=later)
        assert await loyalty.stored() == await loyalty.expected(), step
        assert await loyalty.stored_standings() == await loyalty.expected_standings(), step
    await responses.confirm_due(catalog, mail_settings, now=datetime.now(UTC) + timedelta(minutes=1))
    assert await loyalty.stored() == await loyalty.expected()
    await same_quadrants(catalog, org)


async def test_a_period_reads_the_latest_answers_table_unless_it_ends_before_the_newest_answer(
    mail_client, mail_settings, catalog, org, monkeypatch
):
    invitations = await people(org)
    for number, invitation in enumerate(invitations):
        if number % 5 != 4:  # a few never answered
            score = 1 + number % 5 if invitation.survey_id == "csat" else number % 11
            await answer(mail_client, mail_settings, invitation, score, "why")  # a comment: it counts at once
    # the answers were given over a month: moved back, each by whole days (its day moves with its time)
    answers = await Response.filter(confirmed=True).order_by("id")
    assert len(answers) == 15
    for number, found in enumerate(answers):
        back = timedelta(days=(number * 7) % 31)
        await Response.filter(id=found.id).update(answered_at=found.answered_at - back, day=found.day - back)
    await loyalty.rebuild()
    days = sorted({found.day for found in await Response.filter(confirmed=True)})
    assert len(days) > 5
    scopes = (None, {org.warsaw.id}, {org.milan.id}, {org.warsaw.id, org.milan.id}, subtree(org))
    periods = [(since, until) for since in (EVER, *days) for until in (None, days[-1], days[-1] + timedelta(days=1))]
    expected = {
        (since, until, frozenset(teams or ())): await insights.quadrant_from_answers(catalog, teams, since, until)
        for since, until in periods
        for teams in scopes
    }
    assert len({str(found) for found in expected.values()}) > 5  # the periods differ

    async def window_query(*args):
        raise AssertionError("a period to the newest answer read every answer")

    with monkeypatch.context() as patched:
        patched.setattr(insights, "_latest_from_answers", window_query)
        for since, until in periods:
            for teams in scopes:
                found = await insights.quadrant(catalog, teams, since, until)
                assert found == expected[since, until, frozenset(teams or ())], (since, until, teams)
    # a period that ends before the newest answer: a later answer hides the one inside it from the table
    for until in days[:-1]:
        for teams in scopes:
            found = await insights.quadrant(catalog, teams, EVER, until)
            assert found == await insights.quadrant_from_answers(catalog, teams, EVER, until), (until, teams)


async def test_an_older_answer_confirmed_late_leaves_the_newer_one_latest(mail_client, mail_settings, catalog, org):
    contact = await Contact.create(external_id="Q-late", name="Late", email="late@x.io")
    older, newer = await invitations_of(contact, "nps", [org.warsaw, org.warsaw])
    [csat] = await invitations_of(contact, "csat", [org.warsaw])
    await answer(mail_client, mail_settings, csat, 5, "good")
    await answer(mail_client, mail_settings, older, 3)  # provisional: it counts once it settles
    await answer(mail_client, mail_settings, newer, 10, "changed my mind")
    settled = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    assert await responses.confirm_due(catalog, mail_settings, now=settled) == 1
    [row] = await LoyaltyLatest.filter(contact=contact, survey_id="nps")
    assert (row.score, row.response_id) == (10, (await Response.get(invitation_id=newer.id)).id)
    result = await insights.quadrant(catalog)
    assert result["counts"]["loyal"] == 1 and result == await insights.quadrant_from_answers(catalog, None, EVER)


async def test_an_answer_given_again_becomes_the_latest_even_with_the_same_score(
    mail_client, mail_settings, catalog, org
):
    contact = await Contact.create(external_id="Q-again", name="Again", email="again@x.io")
    first, second = await invitations_of(contact, "nps", [org.milan, org.milan])
    [csat] = await invitations_of(contact, "csat", [org.milan])
    await answer(mail_client, mail_settings, csat, 5, "good")
    await answer(mail_client, mail_settings, first, 6, "meh")
    await answer(mail_client, mail_settings, second, 10, "great")
    assert (await insights.quadrant(catalog))["counts"]["loyal"] == 1
    await answer(mail_client, mail_settings, first, 6)  # the first link again, the same score: newest now
    [row] = await LoyaltyLatest.filter(contact=contact, survey_id="nps")
    assert row.score == 6
    assert (await insights.quadrant(catalog))["counts"]["satisfied_not_loyal"] == 1
    await same_quadrants(catalog, org)


async def test_public_link_answers_have_no_contact_and_no_row(mail_client, mail_settings, catalog, org):
    assert await loyalty.stored() == set()
    assert await loyalty.rebuild() == 0


async def test_the_migration_fills_the_table_from_the_counted_answers(empty_database_url):
    url = empty_database_url
    await db.migrate(url, target="models.0010_shared_rate_limit")
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    async with db.connected(url):
        for number in (1, 2):
            await db.fetch(
                "INSERT INTO contact (external_id, email, name, locale, attributes, created_at, updated_at)"
                " VALUES (?, ?, 'X', 'en', '{}', ?, ?)",
                [f"C{number}", f"c{number}@x.io", at, at],
            )
        answers = [  # contact, survey, score, minutes later, confirmed, discarded
            (1, "nps", 6, 0, True, False),
            (1, "nps", 9, 10, True, False),  # contact 1's latest NPS
            (1, "nps", 2, 20, False, False),  # not counted yet
            (1, "csat", 4, 5, True, False),
            (2, "nps", 7, 0, True, False),
            (2, "nps", 1, 30, False, True),  # discarded
        ]
        for n, (contact, survey, score, minutes, confirmed, discarded) in enumerate(answers, start=1):
            moment = at + timedelta(minutes=minutes)
            await db.fetch(
                "INSERT INTO invitation (survey_id, contact_id, locale, status, created_at) VALUES (?, ?, 'en', ?, ?)",
                [survey, contact, "answered", at],
            )
            await db.fetch(
                "INSERT INTO response (survey_id, invitation_id, question_id, score, scores, comment, locale,"
                " answered_at, day, confirmed, dimensions, history, discarded, created_at, updated_at)"
                " VALUES (?, ?, 'q', ?, '{}', '', 'en', ?, ?, ?, '{}', '[]', ?, ?, ?)",
                [survey, n, score, moment, moment.date(), confirmed, discarded, moment, moment],
            )
    assert (await db.migrate(url))[0] == "models.0011_loyalty_latest"  # and any later ones
    async with db.connected(url):
        assert await loyalty.stored() == {(1, "nps", 0, 9, 2), (1, "csat", 0, 4, 4), (2, "nps", 0, 7, 5)}
        assert await loyalty.stored() == await loyalty.expected()


async def test_the_standing_migration_fills_each_scope_from_the_latest_answers(empty_database_url):
    url = empty_database_url
    await db.migrate(url, target="models.0013_scheduled_runs")
    at = "2026-03-01 12:00:00+00:00"
    async with db.connected(url):
        for survey_id, kind in (("csat", "csat"), ("nps", "nps"), ("ces", "ces")):
            await db.fetch(
                "INSERT INTO survey_version (survey_id, checksum, definition, loaded_at) VALUES (?, 'x', ?, ?)",
                [survey_id, f'{{"kind": "{kind}"}}', db.as_datetime(at)],
            )
        care = await Team.create(slug="care", name="Care")
        warsaw = await Team.create(slug="warsaw", name="Warsaw", parent=care)
        contact = await Contact.create(external_id="C1", name="One", email="one@x.io")
        latest = [  # survey, team, score, minutes later, response id
            ("csat", warsaw.id, 5, 0, 1),
            ("nps", 0, 10, 5, 2),  # no team: the organisation's latest NPS only
            ("nps", warsaw.id, 6, 1, 3),
            ("ces", warsaw.id, 2, 9, 4),  # neither CSAT nor NPS
        ]
        for survey_id, team_id, score, minutes, response_id in latest:
            moment = db.as_datetime(at) + timedelta(minutes=minutes)
            await LoyaltyLatest.create(
                contact=contact, survey_id=survey_id, team_id=team_id, score=score, answered_at=moment,
                day=moment.date(), response_id=response_id,
            )  # fmt: skip
    assert (await db.migrate(url))[0] == "models.0014_loyalty_standing"
    async with db.connected(url):
        assert await loyalty.stored_standings() == {
            (0, contact.id, 5, 1, 10, 2, "loyal"),
            (warsaw.id, contact.id, 5, 1, 6, 3, "satisfied_not_loyal"),
            (care.id, contact.id, 5, 1, 6, 3, "satisfied_not_loyal"),
        }
