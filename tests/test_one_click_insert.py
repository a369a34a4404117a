"""The first one-click score is stored by two plain statements instead of the ORM: the row must be exactly what
the general answer rules store for the same answer, or trends, cases and exports would differ by the path taken."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from pulse import db, responses
from pulse.models import Contact, Invitation, Response
from pulse.writer import GroupCommit
from tests.conftest import make_settings, sent_invitation

SKIP = {"id", "invitation_id"}


async def _row(invitation_id: int) -> dict:
    [row] = await Response.filter(invitation_id=invitation_id).values()
    return {name: value for name, value in row.items() if name not in SKIP}


@pytest.mark.parametrize("path", ["statements", "group commit"])
async def test_the_one_click_insert_stores_what_the_general_rules_store(database_url, catalog, path):
    settings = make_settings(database_url, PULSE_SEGMENT_ATTRIBUTES="tier,size")
    survey = catalog.get("csat")
    now = datetime.now(UTC)
    answer = responses.Answer(score=4, comment=None, locale="it", rendered_at=now.timestamp() - 5)
    async with db.connected(database_url):
        first = await sent_invitation(settings, catalog, 1, contact_attributes={"tier": "gold", "size": 12})
        second = await sent_invitation(settings, catalog, 2, contact_attributes={"tier": "gold", "size": 12})
        bought = now - timedelta(days=40)
        await Contact.filter(id__in=[first.contact_id, second.contact_id]).update(first_purchase_at=bought)

        fast = await responses.invited(first.id)
        assert fast is not None and fast.attributes == {"tier": "gold", "size": 12}
        if path == "statements":
            assert await responses.record_invitation_answer(fast, survey, answer, settings, now) == "recorded"
        else:  # as the answer page stores it: on SQLite, in one call in the database's thread
            writer = GroupCommit()
            async with writer.running():
                assert await responses.answer_invitation(writer, fast, survey, answer, settings, now) == "recorded"
            assert writer.in_thread_batches == (1 if db.dialect() == "sqlite" else 0)

        # the general rules, for the same answer at the same moment, through the ORM
        other = await responses.invited(second.id)
        async with in_transaction():
            await Invitation.filter(id=second.id).update(status="answered", answered_at=now)
            response = Response(
                survey_id=survey.id,
                survey_version_id=await responses._version_id(survey, settings),
                invitation_id=second.id,
                touchpoint_type=other.touchpoint_type,
                team_id=other.team_id,
                channel=other.channel,
                stage=other.stage,
                dimensions=responses.snapshot(other, settings),
            )
            assert await responses._apply(response, survey, answer, settings, now) == "recorded"

        stored, expected = await _row(first.id), await _row(second.id)
        assert stored["dimensions"] == {"tier": "gold", "size": "12", "days_since_sale": 39}
        # created_at and updated_at: the ORM stamps its own clock, the insert stamps the answer's moment
        for stamp in ("created_at", "updated_at"):
            assert abs(stored.pop(stamp) - expected.pop(stamp)) < timedelta(seconds=5)
        assert stored == expected
        marked = await Invitation.filter(id__in=[first.id, second.id]).values_list("status", "answered_at")
        assert marked == [("answered", now), ("answered", now)]


async def test_a_second_score_for_the_same_invitation_goes_through_the_general_rules(database_url, catalog):
    settings = make_settings(database_url)
    survey = catalog.get("csat")
    now = datetime.now(UTC)
    async with db.connected(database_url):
        invitation = await responses.invited((await sent_invitation(settings, catalog)).id)
        first = responses.Answer(score=2, comment=None, locale="pl", rendered_at=now.timestamp() - 5)
        assert await responses.record_invitation_answer(invitation, survey, first, settings, now) == "recorded"
        later = now + timedelta(seconds=30)
        second = responses.Answer(score=5, comment=None, locale="pl", rendered_at=later.timestamp() - 5)
        assert await responses.record_invitation_answer(invitation, survey, second, settings, later) == "recorded"
        [response] = await Response.filter(invitation_id=invitation.id)
        assert response.score == 5
        assert [entry["score"] for entry in response.history] == [2]  # the change is kept, not a second row


async def test_an_unknown_invitation_is_not_found(database_url):
    async with db.connected(database_url):
        assert await responses.invited(123456) is None


async def test_answers_in_one_batch_are_each_stored_once_and_a_repeat_goes_through_the_rules(database_url, catalog):
    settings = make_settings(database_url)
    survey = catalog.get("csat")
    now = datetime.now(UTC)
    async with db.connected(database_url):
        invitations = [await responses.invited((await sent_invitation(settings, catalog, n)).id) for n in range(6)]
        await responses._version_id(survey, settings)  # remembered: the answers below queue in the order given
        writer = GroupCommit()
        async with writer.running():
            scores = [1, 2, 3, 4, 5, 3]
            outcomes = await asyncio.gather(
                *(
                    responses.answer_invitation(
                        writer, invitation, survey, responses.Answer(score, None, "en", now.timestamp() - 5), settings
                    )
                    for invitation, score in zip(invitations, scores, strict=True)
                ),
                # the same invitation twice in the batch: the second finds the first and changes its score
                responses.answer_invitation(
                    writer, invitations[0], survey, responses.Answer(2, None, "en", now.timestamp() - 5), settings
                ),
            )
        assert outcomes == ["recorded"] * 7
        assert writer.in_thread_batches >= (1 if db.dialect() == "sqlite" else 0)
        stored = dict(
            await Response.filter(invitation_id__in=[i.id for i in invitations]).values_list("invitation_id", "score")
        )
        assert stored == {invitation.id: score for invitation, score in zip(invitations, [2, *scores[1:]], strict=True)}
        [first] = await Response.filter(invitation_id=invitations[0].id)
        assert [entry["score"] for entry in first.history] == [1]
        assert await Invitation.filter(id__in=[i.id for i in invitations], status="answered").count() == 6
