"""Rollups stay equal to a recomputation from the raw answers, whatever happens: answers, changes, flurries,
confirmations and rebuilds, in any order (hypothesis), on both engines."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse import rollups
from pulse.models import DailyRollup, Response
from pulse.responses import Answer, confirm_due, invited, record_invitation_answer
from tests.conftest import sent_invitation

NUMBERS = itertools.count(1000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.integers(0, 3), st.integers(1, 5), st.booleans(), st.integers(0, 200)),
        st.tuples(st.just("confirm"), st.integers(0, 10)),
        st.tuples(st.just("rebuild"), st.booleans()),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_rollups_equal_a_recomputation_after_any_history(mail_app, mail_settings, catalog, steps):
    await DailyRollup.all().delete()
    await Response.all().delete()
    survey = catalog.get("csat")
    invitations = []
    for _ in range(4):
        number = next(NUMBERS)
        invitation = await sent_invitation(
            mail_settings, catalog, number, contact_attributes={"plan": f"p{number % 2}"}
        )
        invitations.append(await invited(invitation.id))
    clock = datetime.now(UTC)
    for step in steps:
        if step[0] == "answer":
            _, which, score, with_comment, seconds = step
            clock += timedelta(seconds=seconds)
            answer = Answer(
                score=score, comment="why" if with_comment else None, locale="en", rendered_at=clock.timestamp() - 5
            )
            await record_invitation_answer(invitations[which], survey, answer, mail_settings, now=clock)
        elif step[0] == "confirm":
            clock += timedelta(seconds=step[1])
            await confirm_due(catalog, mail_settings, now=clock)
        else:
            since = (clock - timedelta(days=1)).date() if step[1] else None
            await rollups.rebuild(mail_settings.segment_attributes, since)
        expected = rollups.expected_from(
            await Response.all(), await rollups.team_scopes(), mail_settings.segment_attributes
        )
        assert await rollups.stored() == expected, step


async def test_an_answer_counts_for_its_team_its_parents_and_its_segments(mail_client, mail_settings, catalog, org):
    from tests.conftest import old_nonce, survey_url

    invitation = await sent_invitation(
        mail_settings, catalog, 1, contact_attributes={"plan": "pro", "region": "PL"}, stage="active"
    )
    data = {"score": "4", "comment": "fine", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    await mail_client.post(survey_url(mail_settings, invitation.id), data=data)
    found = {(r.dimension, r.value): r.c4 for r in await DailyRollup.all()}
    assert found == {
        ("all", "all"): 1,
        ("touchpoint", "support_ticket_closed"): 1,
        ("channel", "phone"): 1,
        ("stage", "active"): 1,
        ("plan", "pro"): 1,
        ("region", "PL"): 1,
        ("team", "support-warsaw"): 1,
        ("team", "customer-care"): 1,
        ("team|touchpoint", "support-warsaw|support_ticket_closed"): 1,
        ("team|touchpoint", "customer-care|support_ticket_closed"): 1,
        ("team|channel", "support-warsaw|phone"): 1,
        ("team|channel", "customer-care|phone"): 1,
        ("team|stage", "support-warsaw|active"): 1,
        ("team|stage", "customer-care|active"): 1,
        ("team|plan", "support-warsaw|pro"): 1,
        ("team|plan", "customer-care|pro"): 1,
        ("team|region", "support-warsaw|PL"): 1,
        ("team|region", "customer-care|PL"): 1,
    }


def test_lifecycle_buckets():
    assert [rollups.lifecycle(d) for d in (0, 30, 31, 90, 91, 180, 181, 365, 366, 2000)] == [
        "0-30",
        "0-30",
        "31-90",
        "31-90",
        "91-180",
        "91-180",
        "181-365",
        "181-365",
        "365+",
        "365+",
    ]
    assert rollups.lifecycle(None) is None
