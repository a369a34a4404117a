"""The demo's recovery story: each team works its cases at its own pace, and resolved cases get their one
follow-up question (pulse/recovery.py). Warsaw calls back within hours and wins most customers back; Milan is
slow and wins few; Ljubljana is in between. Runs after the demo's cases are stored."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pulse.catalog import Catalog, Survey
from pulse.followups import add_business_days
from pulse.models import CaseNote, Contact, FollowUpCase, Invitation, Response, Team, Touchpoint

# team -> (hours to the first call: low, high), (days from the call to resolution: low, high), odds of recovery
PACE = {
    "support-warsaw": ((1, 8), (0.5, 3), 0.85),
    "support-ljubljana": ((4, 30), (1, 6), 0.5),
    "support-milan": ((20, 96), (3, 12), 0.2),
}
DEFAULT_PACE = ((6, 48), (1, 8), 0.45)
FOLLOW_UP_DAYS = 150  # cases resolved this recently had their follow-up question; older ones predate it
FATIGUE = timedelta(days=30)
NOTES = {  # the owner's note after the first call, in the team's language (demo data, not interface text)
    "pl": "Zadzwoniłem do klienta, ustalamy rozwiązanie.",
    "it": "Ho chiamato il cliente, stiamo trovando una soluzione.",
    "sl": "Poklical sem stranko, iščemo rešitev.",
    "en": "Called the customer; we are working on a fix.",
}
THANKS = {
    "pl": "Dziękuję, wszystko już działa.",
    "it": "Grazie, ora è tutto a posto.",
    "sl": "Hvala, zdaj vse deluje.",
    "en": "Thank you, all sorted now.",
}


STORY_TEAMS = (("support-warsaw", "pl"), ("support-ljubljana", "sl"), ("support-milan", "it"))
STORY_CASES = 12  # recent complaints per support team, worked at the team's pace
STORY_TYPE = "support_ticket_closed"


async def _story_cases(
    catalog: Catalog, rng: random.Random, now: datetime, zone: ZoneInfo, invitations: dict[int, list]
) -> None:
    """Recent unhappy answers to each support team, from customers not asked anything else for weeks around
    them (so their follow-up question is not held back by the fatigue window), each with a case."""
    surveys = catalog.for_touchpoint(STORY_TYPE)
    if not surveys:
        return
    survey = surveys[0]
    unhappy = next((band for band in survey.bands if band.unhappy), None)
    if unhappy is None:
        return
    teams = {t.slug: t for t in await Team.filter(slug__in=[slug for slug, _ in STORY_TEAMS])}
    taken: set[int] = set()
    for slug, locale in STORY_TEAMS:
        team = teams.get(slug)
        if team is None:
            continue
        people = await Contact.filter(locale=locale).order_by("id")
        rng.shuffle(people)
        made = 0
        for person in people:
            if made == STORY_CASES:
                break
            opened = now - timedelta(days=rng.uniform(12, 85), hours=rng.uniform(0, 8))
            asked = invitations.get(person.id, [])
            if person.id in taken or any(abs(at - opened) < timedelta(days=50) for _, at in asked):
                continue
            taken.add(person.id)
            made += 1
            occurred = opened - timedelta(hours=rng.uniform(1, 20))
            touchpoint = await Touchpoint.create(
                source="demo",
                external_id=f"RECOVERY-{slug}-{made}",
                type=STORY_TYPE,
                occurred_at=occurred,
                contact_id=person.id,
                team_id=team.id,
                agent=f"agent-{rng.randint(1, 12)}",
                channel="phone",
                stage="active",
            )
            send_at = occurred + timedelta(minutes=survey.trigger.delay_minutes if survey.trigger else 0)
            invitation = await Invitation.create(
                survey_id=survey.id,
                contact_id=person.id,
                touchpoint_id=touchpoint.id,
                locale=locale,
                status="answered",
                send_at=send_at,
                sent_at=send_at,
                expires_at=send_at + timedelta(days=30),
                answered_at=opened,
            )
            asked.append((invitation.id, send_at))
            invitations[person.id] = asked
            score = rng.randint(unhappy.low, unhappy.high)
            answer = await Response.create(
                survey_id=survey.id,
                invitation_id=invitation.id,
                question_id=survey.question.id,
                score=score,
                scores={survey.question.id: score},
                comment="",
                locale=locale,
                answered_at=opened,
                day=opened.astimezone(zone).date(),
                confirmed=True,
                touchpoint_type=STORY_TYPE,
                team_id=team.id,
                channel="phone",
                stage="active",
                dimensions={k: v for k, v in person.attributes.items() if k in ("plan", "region")},
            )
            await FollowUpCase.create(
                response_id=answer.id,
                contact_id=person.id,
                team_id=team.id,
                owner_id=team.owner_id,
                status="resolved",
                due_at=add_business_days(opened, 2, zone),
                survey_id=survey.id,
                score=score,
                created_at=opened,
            )


def _score_in(rng: random.Random, survey: Survey, better: bool, opened: int) -> int:
    """A score in a better band than `opened`'s (recovered), or in the same band (not recovered)."""
    bands = list(survey.bands)
    at = bands.index(survey.band_for(opened))
    band = rng.choice(bands[at + 1 :]) if better and at + 1 < len(bands) else bands[at]
    return rng.randint(band.low, band.high)


async def load_story(catalog: Catalog, now: datetime, seed: int, timezone: str) -> int:
    """Notes and resolutions on the demo's cases, and the follow-up questions with their answers; returns how many
    follow-up questions were answered."""
    rng = random.Random(seed * 31 + 18)
    zone = ZoneInfo(timezone)
    slugs = dict(await Team.all().values_list("id", "slug"))
    invitations: dict[int, list[tuple[int, datetime]]] = {}
    for inv_id, contact_id, send_at in await Invitation.filter(send_at__not_isnull=True).values_list(
        "id", "contact_id", "send_at"
    ):
        invitations.setdefault(contact_id, []).append((inv_id, send_at))
    await _story_cases(catalog, rng, now, zone, invitations)
    cases = await FollowUpCase.all().order_by("id").select_related("response")
    notes: list[CaseNote] = []
    answered = 0
    for case in cases:
        if case.status == "open" or case.response is None:
            continue
        first_hours, resolve_days, odds = PACE.get(slugs.get(case.team_id, ""), DEFAULT_PACE)
        opened = case.created_at
        called = min(opened + timedelta(hours=rng.uniform(*first_hours)), now - timedelta(minutes=5))
        locale = case.response.locale if case.response.locale in NOTES else "en"
        notes.append(_note(case, "note", called, body=NOTES[locale]))
        if case.status == "in_progress":
            notes.append(_note(case, "status", called, data={"from": "open", "to": "in_progress"}))
            continue
        done = min(called + timedelta(days=rng.uniform(*resolve_days)), now - timedelta(minutes=1))
        notes.append(_note(case, "status", done, data={"from": "open", "to": case.status}))
        case.recovery_decided_at = done
        survey = catalog.get(case.survey_id)
        send_at = done + timedelta(hours=24)
        if case.status != "resolved" or survey is None or send_at > now or now - done > timedelta(FOLLOW_UP_DAYS):
            await case.save(update_fields=["recovery_decided_at"])
            continue
        own = case.response.invitation_id
        tired = any(i != own and abs(at - send_at) < FATIGUE for i, at in invitations.get(case.contact_id or 0, []))
        reply_at = send_at + timedelta(hours=rng.uniform(1, 72))
        replies = not tired and rng.random() < 0.75 and reply_at < now
        first = await Invitation.get_or_none(id=own) if own else None
        invitation = await Invitation.create(
            survey_id=survey.id,
            contact_id=case.contact_id,
            touchpoint_id=first.touchpoint_id if first else None,
            locale=case.response.locale,
            status="skipped" if tired else ("answered" if replies else "sent"),
            skip_reason="fatigue" if tired else None,
            send_at=send_at,
            sent_at=None if tired else send_at,
            expires_at=None if tired else send_at + timedelta(days=30),
            answered_at=reply_at if replies else None,
        )
        case.recovery_invitation_id = invitation.id
        await case.save(update_fields=["recovery_decided_at", "recovery_invitation_id"])
        if not replies:
            continue
        answered += 1
        better = rng.random() < odds
        score = _score_in(rng, survey, better, case.score if case.score is not None else case.response.score)
        original = case.response
        await Response.create(
            survey_id=survey.id,
            survey_version_id=original.survey_version_id,
            invitation_id=invitation.id,
            question_id=survey.question.id,
            score=score,
            scores={survey.question.id: score},
            comment=THANKS[locale] if better and rng.random() < 0.4 else "",
            locale=original.locale,
            answered_at=reply_at,
            day=reply_at.astimezone(zone).date(),
            confirmed=True,
            touchpoint_type=original.touchpoint_type,
            team_id=original.team_id,
            channel=original.channel,
            stage=original.stage,
            dimensions=original.dimensions,
        )
        if not better:  # still unhappy: the case opened again (as Pulse does) and was resolved once more
            again = min(reply_at + timedelta(days=rng.uniform(*resolve_days)), now - timedelta(seconds=30))
            notes.append(
                _note(
                    case,
                    "status",
                    reply_at,
                    data={"from": "resolved", "to": "open", "reason": "follow_up"},
                    by_pulse=True,
                )
            )
            notes.append(_note(case, "status", max(again, reply_at), data={"from": "open", "to": "resolved"}))
    await CaseNote.bulk_create(notes, batch_size=1000)
    return answered


def _note(
    case: FollowUpCase, kind: str, at: datetime, *, body: str = "", data: dict | None = None, by_pulse: bool = False
) -> CaseNote:
    return CaseNote(
        case_id=case.id,
        author_id=None if by_pulse else case.owner_id,
        kind=kind,
        body=body,
        data=data or {},
        created_at=at,
    )
