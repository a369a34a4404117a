"""Recovery after a case: one follow-up question when a case is resolved, and how well each team recovers.

The follow-up is an ordinary invitation to the case's survey (same question and scale, same e-mail, answer page
and outbox), sent once per case, under the fatigue window every invitation obeys. Its e-mail opens with "Was your
issue resolved?". The answer is an ordinary answer of that customer; the case keeps the invitation's id.
"""

# ruff: noqa: S608 - the SQL here is constant text and "?" placeholders
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from pulse import db, i18n, privacy, rules
from pulse.catalog import Catalog, Survey
from pulse.models import CaseNote, Contact, FollowUpCase, Invitation, OutboxMessage, Team
from pulse.models import Response as Answer
from pulse.settings import Settings
from pulse.touchpoints import mail_domain, message_id, policy

NO_CUSTOMER = "no_customer"  # a case from a public link, or whose contact was erased: nobody to ask
# what a person does on a case: a note or a status change (not a reassignment, nor Pulse's own events)
ACTIONS = ("note", "status")


@dataclass(frozen=True)
class Asked:
    """The follow-up of one case: its invitation (None when there was nobody to ask) and why it was skipped."""

    invitation_id: int | None
    send_at: datetime | None
    reason: str | None


def skip_reason(
    *,
    email: str,
    opted_out: bool,
    bounced: bool,
    erased: bool,
    history: Iterable[rules.Prior],
    send_at: datetime,
    window: timedelta,
    exempt: int | None,
) -> str | None:
    """Why the follow-up must not be sent (None: send it at `send_at`), with the reasons and the fatigue rule of
    every invitation. `exempt`: the invitation whose answer opened the case, whose conversation this closes."""
    if not email:
        return rules.NO_EMAIL
    if erased:
        return privacy.ERASED
    if opted_out:
        return rules.OPTED_OUT
    if bounced:
        return rules.BOUNCED
    for prior in history:
        if prior.invitation_id == exempt or prior.status not in rules.ACTIVE_STATUSES:
            continue
        if abs(prior.send_at - send_at) < window:
            return rules.FATIGUE
    return None


async def _history(contact: Contact, horizon: datetime) -> list[rules.Prior]:
    """The contact's invitations since `horizon`, and those of an employee with the same address (as ingest)."""
    marks = db.marks(len(rules.ACTIVE_STATUSES))
    statuses = sorted(rules.ACTIVE_STATUSES)
    rows = await db.fetch(
        f"SELECT id, survey_id, status, send_at FROM invitation WHERE contact_id = ? AND send_at >= ?"
        f" AND status IN ({marks})",
        [contact.id, horizon, *statuses],
    )
    if contact.email:
        rows += await db.fetch(
            "SELECT i.id, i.survey_id, i.status, i.send_at FROM invitation i JOIN employee e ON e.id = i.employee_id"
            f" WHERE e.email = ? AND i.send_at >= ? AND i.status IN ({marks})",
            [contact.email, horizon, *statuses],
        )
    return [rules.Prior(r[0], r[1], r[2], db.as_datetime(r[3])) for r in rows]


async def offer(case: FollowUpCase, catalog: Catalog, settings: Settings, now: datetime | None = None) -> Asked | None:
    """After `case` was resolved: schedule its one follow-up question, or record why not. None when the setting
    is off or the case already had its chance (a second resolution, or another worker got there first).

    1. Claim the case with a guarded UPDATE, so no case is ever asked twice.
    2. Apply the rules of every invitation (address, erasure, opt-out, bounce, fatigue) and quiet hours.
    3. Store the invitation (scheduled, or skipped with its reason) and its e-mail, in one transaction.
    """
    if not settings.recovery_followup:
        return None
    now = now or datetime.now(UTC)
    async with in_transaction():
        if not await FollowUpCase.filter(id=case.id, recovery_decided_at=None).update(recovery_decided_at=now):
            return None
        case.recovery_decided_at = now
        survey = catalog.get(case.survey_id)
        contact = await Contact.get_or_none(id=case.contact_id) if case.contact_id else None
        if contact is None or survey is None or survey.audience != "customer":
            return Asked(None, None, NO_CUSTOMER)
        first = None
        if case.response_id:
            answered = await Answer.filter(id=case.response_id).values_list("invitation_id", flat=True)
            first = await Invitation.get_or_none(id=answered[0]) if answered and answered[0] else None
        pol = policy(settings)
        tz = rules.zone(contact.timezone, settings.timezone)
        send_at = rules.out_of_quiet_hours(now + timedelta(hours=settings.recovery_delay_hours), pol.quiet_hours, tz)
        window = timedelta(days=_fatigue_days(survey, pol))
        erased = bool(await privacy.suppressed(settings.secret_key, {contact.email}, {contact.external_id}))
        reason = skip_reason(
            email=contact.email,
            opted_out=contact.opted_out_at is not None,
            bounced=contact.bounced_at is not None,
            erased=erased,
            history=await _history(contact, send_at - window),
            send_at=send_at,
            window=window,
            exempt=first.id if first else None,
        )
        locale = i18n.supported(contact.locale) or (first.locale if first else None) or settings.default_locale
        invitation = await Invitation.create(
            survey_id=survey.id,
            contact_id=contact.id,
            touchpoint_id=first.touchpoint_id if first else None,  # the answer counts for the same team and channel
            locale=locale,
            status="skipped" if reason else "scheduled",
            skip_reason=reason,
            send_at=send_at,
        )
        if reason is None:
            await OutboxMessage.create(
                kind="invitation",
                invitation=invitation,
                to_email=contact.email,
                locale=locale,
                payload={"case_id": case.id},  # the e-mail asks "Was your issue resolved?" first
                status="pending",
                next_attempt_at=send_at,
                message_id=message_id(invitation.id, mail_domain(settings.mail_from)),
            )
        await FollowUpCase.filter(id=case.id).update(recovery_invitation_id=invitation.id)
        case.recovery_invitation_id = invitation.id
    return Asked(invitation.id, None if reason else send_at, reason)


async def follow_up(case: FollowUpCase) -> dict | None:
    """What became of the case's follow-up question (its page and the API): its invitation's status and skip
    reason, when it is sent, and the answer to it."""
    if case.recovery_invitation_id is None:
        return None
    invitation = await Invitation.get_or_none(id=case.recovery_invitation_id)
    if invitation is None:
        return None  # the customer was erased since
    answer = await Answer.filter(invitation_id=invitation.id, confirmed=True, discarded=False).first()
    return {
        "invitation_id": invitation.id,
        "status": invitation.status,
        "skip_reason": invitation.skip_reason,
        "send_at": invitation.send_at,
        "response_id": answer.id if answer else None,
        "score": answer.score if answer else None,
    }


def _fatigue_days(survey: Survey, pol: rules.Policy) -> int:
    trigger = survey.trigger
    return trigger.fatigue_days if trigger and trigger.fatigue_days is not None else pol.fatigue_days


# --- the report -------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One team's (or everyone's) recovery figures for the cases opened in a period."""

    cases: int = 0
    first_contact: list[float] = field(default_factory=list)  # seconds from opening to the first action
    resolve: list[float] = field(default_factory=list)  # seconds from opening to resolution
    detractors: int = 0  # resolved cases with a customer who could be asked again
    answered_again: int = 0  # ... who answered the same survey after the case opened
    recovered: int = 0  # ... whose latest such answer is in a better band than the one that opened the case

    def as_json(self) -> dict:
        return {
            "cases": self.cases,
            "first_contact": _durations(self.first_contact),
            "resolution": _durations(self.resolve),
            "recovery": {
                "detractors": self.detractors,
                "answered_again": self.answered_again,
                "recovered": self.recovered,
                "recovered_share": _share(self.recovered, self.detractors),
                "recovered_share_of_answered": _share(self.recovered, self.answered_again),
            },
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _durations(seconds: list[float]) -> dict:
    """How many, and the median and mean in seconds (None when there are none)."""
    if not seconds:
        return {"count": 0, "median_seconds": None, "mean_seconds": None}
    return {
        "count": len(seconds),
        "median_seconds": round(statistics.median(seconds)),
        "mean_seconds": round(statistics.fmean(seconds)),
    }


@dataclass
class Report:
    """Figures per team (by team id, 0 for cases with no team) and for all of them together."""

    since: date
    until: date
    teams: dict[int, Figures]
    total: Figures
    names: dict[int, tuple[str, str]]  # team id -> (slug, name)


def period_bounds(since: date, until: date, timezone: str) -> tuple[datetime, datetime]:
    """The instants that start `since` and end `until` in the organisation's time zone."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(since, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return start, end


async def report(
    catalog: Catalog, settings: Settings, team_ids: Iterable[int] | None, since: date, until: date
) -> Report:
    """Per team, of the cases opened between `since` and `until` (their team in `team_ids`, None: every case):
    time to first contact, time to resolve, and the detractors recovered (see the README's definitions)."""
    start, end = period_bounds(since, until, settings.timezone)
    query = FollowUpCase.filter(created_at__gte=start, created_at__lt=end)
    if team_ids is not None:
        query = query.filter(team_id__in=list(team_ids))
    cases = await query.values(
        "id", "team_id", "contact_id", "survey_id", "score", "status", "created_at", "response_id"
    )
    ids = [c["id"] for c in cases]
    first_action: dict[int, datetime] = {}
    resolved_at: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        notes = (
            await CaseNote.filter(case_id__in=chunk, kind__in=ACTIONS)
            .order_by("id")
            .values("case_id", "kind", "data", "created_at")
        )
        for note in notes:
            data = note["data"] or {}
            if data.get("reason") != "follow_up":  # reopened by an unhappy follow-up answer: Pulse, not the owner
                first_action.setdefault(note["case_id"], note["created_at"])
            if note["kind"] == "status" and data.get("to") == "resolved":
                resolved_at[note["case_id"]] = note["created_at"]  # the last resolution, after any reopening
    later = await _later_answers([c for c in cases if c["status"] == "resolved" and c["contact_id"]])
    teams: dict[int, Figures] = {}
    total = Figures()
    for case in cases:
        team = teams.setdefault(case["team_id"] or 0, Figures())
        opened = case["created_at"]
        for figures in (team, total):
            figures.cases += 1
        if case["id"] in first_action:
            seconds = max((first_action[case["id"]] - opened).total_seconds(), 0.0)
            team.first_contact.append(seconds)
            total.first_contact.append(seconds)
        if case["status"] == "resolved" and case["id"] in resolved_at:
            seconds = max((resolved_at[case["id"]] - opened).total_seconds(), 0.0)
            team.resolve.append(seconds)
            total.resolve.append(seconds)
        survey = catalog.get(case["survey_id"])
        if case["status"] != "resolved" or not case["contact_id"] or survey is None or case["score"] is None:
            continue
        outcome = _recovered(survey, case, later.get((case["contact_id"], case["survey_id"]), []))
        for figures in (team, total):
            figures.detractors += 1
            figures.answered_again += outcome is not None
            figures.recovered += bool(outcome)
    names = {t.id: (t.slug, t.name) for t in await Team.filter(id__in=[i for i in teams if i])}
    return Report(since, until, teams, total, names)


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def _later_answers(cases: list[dict]) -> dict[tuple[int, str], list[tuple[datetime, int, int]]]:
    """The confirmed answers of these cases' customers to these cases' surveys since the first of them opened:
    (answered_at, id, score), oldest first."""
    found: dict[tuple[int, str], list[tuple[datetime, int, int]]] = {}
    if not cases:
        return found
    contacts = sorted({c["contact_id"] for c in cases})
    surveys = sorted({c["survey_id"] for c in cases})
    since = min(c["created_at"] for c in cases)
    # from the customers' invitations to their answers (one each): on SQLite a unary + keeps the planner off the
    # survey index, which would read every answer to the survey (PostgreSQL plans by its statistics)
    survey = "+r.survey_id" if db.dialect() == "sqlite" else "r.survey_id"
    for chunk in _chunks(contacts):
        rows = await db.fetch(
            "SELECT i.contact_id, r.survey_id, COALESCE(r.answered_at, r.created_at), r.id, r.score"
            " FROM invitation i JOIN response r ON r.invitation_id = i.id"
            f" WHERE i.contact_id IN ({db.marks(len(chunk))}) AND {survey} IN ({db.marks(len(surveys))})"
            " AND r.confirmed = ? AND r.discarded = ? AND COALESCE(r.answered_at, r.created_at) >= ?",
            [*chunk, *surveys, True, False, db.bound_time(since.astimezone(UTC))],
        )
        for contact_id, survey_id, at, answer_id, score in rows:
            found.setdefault((contact_id, survey_id), []).append((db.as_datetime(at), answer_id, score))
    for answers in found.values():
        answers.sort()
    return found


def _recovered(survey: Survey, case: dict, answers: list[tuple[datetime, int, int]]) -> bool | None:
    """Whether the customer's latest answer after the case opened is in a better band than the one that opened
    it; None when they have not answered again."""
    after = [a for a in answers if a[0] > case["created_at"] and a[1] != case["response_id"]]
    if not after:
        return None
    bands = list(survey.bands)
    return bands.index(survey.band_for(after[-1][2])) > bands.index(survey.band_for(case["score"]))
