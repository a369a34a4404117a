"""Employee engagement pulses: rounds on a schedule, anonymous answers, and results that protect anonymity.

An employee's answer is stored without the employee, the invitation, the address or the time: only the round,
the team and coarse attributes (location, role family, tenure band). The invitation records only that it was
answered, for response rates and reminders. Results are reported per closed round, never as rolling windows,
and every number passes `anonymity.visible` first.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tortoise.transactions import in_transaction

from pulse import anonymity, db, i18n, metrics, rules, tokens, touchpoints
from pulse.catalog import Catalog, Survey
from pulse.errors import BadRequest, Conflict
from pulse.i18n import N_
from pulse.models import Employee, Invitation, OutboxMessage, PulseAnswer, PulseRound, Team
from pulse.roster import tenure_band
from pulse.settings import Settings

ATTRIBUTES = ("location", "role_family", "tenure")


def programme(catalog: Catalog) -> Survey | None:
    """The employee survey that runs on a schedule (the engagement programme)."""
    return next((s for s in catalog if s.audience == "employee" and s.schedule), None)


def round_questions(survey: Survey, number: int) -> list[str]:
    """eNPS every round, and drivers in rotation so each is asked every few rounds."""
    assert survey.schedule is not None
    drivers = [q.id for q in survey.questions[1:]]
    take = min(survey.schedule.questions_per_pulse - 1, len(drivers))
    start = ((number - 1) * take) % len(drivers) if drivers else 0
    return [survey.question.id] + [drivers[(start + i) % len(drivers)] for i in range(take)]


async def open_round(survey: Survey, settings: Settings, now: datetime) -> PulseRound:
    """Open the next round and invite every active employee (quiet hours in each one's zone)."""
    assert survey.schedule is not None
    last = await PulseRound.filter(survey_id=survey.id).order_by("-number").first()
    number = (last.number + 1) if last else 1
    schedule = survey.schedule
    policy = touchpoints.policy(settings)
    async with in_transaction():
        pulse_round = await PulseRound.create(
            survey_id=survey.id,
            number=number,
            questions=round_questions(survey, number),
            opens_at=now,
            remind_at=now + timedelta(days=schedule.reminder_after_days),
            closes_at=now + timedelta(days=schedule.open_days),
        )
        employees = await Employee.filter(active=True).exclude(email="")
        domain = touchpoints.mail_domain(settings.mail_from)
        for employee in employees:
            send_at = rules.out_of_quiet_hours(
                now, policy.quiet_hours, rules.zone(employee.timezone, settings.timezone)
            )
            locale = i18n.supported(employee.locale) or settings.default_locale
            invitation = await Invitation.create(
                survey_id=survey.id,
                employee=employee,
                round=pulse_round,
                locale=locale,
                status="scheduled",
                send_at=send_at,
                expires_at=pulse_round.closes_at,
            )
            await _set_token_hash(invitation.id, settings)
            await OutboxMessage.create(
                kind="pulse_invitation",
                invitation=invitation,
                to_email=employee.email,
                locale=locale,
                payload={},
                status="pending",
                next_attempt_at=send_at,
                message_id=f"<pulse-{invitation.id}.{secrets.token_hex(6)}@{domain}>",
            )
        pulse_round.invited = len(employees)
        await pulse_round.save(update_fields=["invited"])
    return pulse_round


async def _set_token_hash(invitation_id: int, settings: Settings) -> None:
    token = tokens.pulse_token(settings.secret_key, invitation_id)
    await Invitation.filter(id=invitation_id).update(token_hash=tokens.token_hash(token))


async def shuffle(round_id: int) -> None:
    """Rewrite a round's answers with new random ids in random order, in one transaction: afterwards neither the
    ids, nor the order of rows on disk, nor the transaction that wrote them follows the order of answering."""
    rows = await PulseAnswer.filter(round_id=round_id).values(
        "question_id", "score", "comment", "team_id", "dimensions"
    )
    random.SystemRandom().shuffle(rows)
    await PulseAnswer.filter(round_id=round_id).delete()
    await PulseAnswer.bulk_create(
        [PulseAnswer(id=uuid.uuid4(), round_id=round_id, **row) for row in rows], batch_size=500
    )


async def run_schedule(catalog: Catalog, settings: Settings, now: datetime | None = None) -> int:
    """A worker step: open a round when one is due, send reminders, close rounds; returns work done."""
    now = now or datetime.now(UTC)
    survey = programme(catalog)
    if survey is None or survey.schedule is None:
        return 0
    done = 0
    for pulse_round in await PulseRound.filter(survey_id=survey.id, status="open", closes_at__lte=now):
        async with in_transaction():
            if not await PulseRound.filter(id=pulse_round.id, status="open").update(status="closed"):
                continue  # another worker closed it (and shuffled its answers) first
            ids = await Invitation.filter(round_id=pulse_round.id).values_list("id", flat=True)
            await Invitation.filter(id__in=ids, status__in=["scheduled", "sent"]).update(status="expired")
            await OutboxMessage.filter(invitation_id__in=ids, status="pending").update(status="cancelled")
            await shuffle(pulse_round.id)
        done += 1
    # links of rounds opened before pulse links became opaque: give them a hash, so the reminder's link works
    for invitation_id in await Invitation.filter(
        round__status="open", round__survey_id=survey.id, token_hash__isnull=True
    ).values_list("id", flat=True):
        await _set_token_hash(invitation_id, settings)
    for pulse_round in await PulseRound.filter(survey_id=survey.id, status="open", reminded=False, remind_at__lte=now):
        if not await PulseRound.filter(id=pulse_round.id, reminded=False).update(reminded=True):
            continue  # another worker sent them
        domain = touchpoints.mail_domain(settings.mail_from)
        for invitation in await Invitation.filter(round_id=pulse_round.id, status="sent").select_related("employee"):
            await OutboxMessage.create(
                kind="pulse_reminder",
                invitation=invitation,
                to_email=invitation.employee.email,
                locale=invitation.locale,
                payload={},
                status="pending",
                next_attempt_at=now,
                message_id=f"<pulse-reminder-{invitation.id}.{secrets.token_hex(6)}@{domain}>",
            )
        done += 1
    if not await Employee.filter(active=True).exclude(email="").exists():
        return done  # no roster yet: a round now would invite nobody and push the first real one back a cycle
    if await _round_due(survey, now) and await open_round_if_due(survey, settings, now):
        done += 1
    return done


async def _round_due(survey: Survey, now: datetime) -> bool:
    assert survey.schedule is not None
    last = await PulseRound.filter(survey_id=survey.id).order_by("-number").first()
    return last is None or last.opens_at + timedelta(days=survey.schedule.every_days) <= now


async def open_round_if_due(survey: Survey, settings: Settings, now: datetime) -> PulseRound | None:
    """Open the next round unless another worker is opening it or has just opened it; None when it has.

    1. One transaction; on PostgreSQL it first tries an advisory lock of this survey's rounds: a worker that
       does not get it leaves the round to the one that did. On SQLite, BEGIN IMMEDIATE already lets one
       writer in at a time.
    2. Inside, the schedule is read again: a round opened by another worker just before is seen, and none opens.
    """
    async with in_transaction():
        if db.dialect() == "postgres":
            [[locked]] = await db.fetch("SELECT pg_try_advisory_xact_lock(?)", [_lock_key(f"round:{survey.id}")])
            if not locked:
                return None
        if not await _round_due(survey, now):
            return None
        return await open_round(survey, settings, now)


def _lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit integer) for a name."""
    return int.from_bytes(hashlib.sha256(f"pulse:{name}".encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Submission:
    """What one employee sent on the pulse page."""

    scores: dict[str, int]
    comments: dict[str, str]  # per question, optional


async def record(invitation: Invitation, survey: Survey, answer: Submission, today: date) -> None:
    """Store one employee's answers anonymously; the invitation keeps only that it was answered."""
    pulse_round = await PulseRound.get(id=invitation.round_id)
    if pulse_round.status != "open":
        raise Conflict(N_("This round is closed."))
    if set(answer.scores) != set(pulse_round.questions):
        raise BadRequest(N_("Answer every question of this pulse."))
    employee = await Employee.get(id=invitation.employee_id)
    dims = {
        "location": employee.attributes.get("location"),
        "role_family": employee.attributes.get("role_family"),
        "tenure": tenure_band(employee.start_date, today),
    }
    dims = {k: v for k, v in dims.items() if v}
    rows = [
        PulseAnswer(
            id=uuid.uuid4(),
            round_id=pulse_round.id,
            question_id=question,
            score=score,
            comment=answer.comments.get(question, ""),
            team_id=employee.team_id,
            dimensions=dims,
        )
        for question, score in answer.scores.items()
    ]
    random.SystemRandom().shuffle(rows)  # nothing in the rows' order says which question came first either
    async with in_transaction():
        claimed = await Invitation.filter(id=invitation.id, status__in=["scheduled", "sent"]).update(status="answered")
        if not claimed:
            raise Conflict(N_("This pulse was already answered with this link."))
        await PulseAnswer.bulk_create(rows)


DIMENSIONS = ("team", *ATTRIBUTES)


@dataclass
class Cuts:
    """Every group of one round and question that can be published, and which may be: numbers and comments."""

    groups: dict[str, anonymity.Group]
    counts: dict[str, int]
    numbers: set[str]  # groups whose numbers may be shown
    comments: set[str]  # groups whose comment lists may be shown (company and teams)
    rows: list[tuple[int, int, str]] = field(default_factory=list)  # (profile, score, comment) per answer
    keys_of: list[list[str]] = field(default_factory=list)  # the groups each profile belongs to


_CUTS: dict[tuple, Cuts] = {}  # closed rounds never change; the key holds everything else the result depends on


async def cuts(pulse_round: PulseRound, question: str, settings: Settings) -> Cuts:
    """Group a closed round's answers to one question into every published cut and decide what may be shown."""
    teams = tuple(await Team.all().order_by("id").values_list("id", "slug", "parent_id"))
    k, ck = settings.anonymity_min_group, settings.anonymity_min_comments
    key = (pulse_round.id, question, teams, k, ck)
    if key in _CUTS:
        return _CUTS[key]
    slug = {tid: s for tid, s, _ in teams}
    parent = {tid: p for tid, _, p in teams}
    answers = await db.fetch(
        "SELECT team_id, dimensions, score, comment FROM pulse_answer WHERE round_id = ? AND question_id = ?",
        [pulse_round.id, question],
    )
    profiles: dict[tuple, int] = {}
    weights: list[int] = []
    keys_of: list[list[str]] = []
    rows: list[tuple[int, int, str]] = []
    for team_id, dims, score, comment in answers:
        dims = db.as_json(dims) or {}
        profile = (team_id, *(dims.get(a) for a in ATTRIBUTES))
        if profile not in profiles:
            profiles[profile] = len(weights)
            weights.append(0)
            keys = [anonymity.COMPANY]
            current, seen = team_id, set()
            while current is not None and current not in seen and current in slug:
                seen.add(current)
                keys.append(f"team:{slug[current]}")
                current = parent.get(current)
            keys += [f"{a}:{dims[a]}" for a in ATTRIBUTES if dims.get(a)]
            keys_of.append(keys)
        index = profiles[profile]
        weights[index] += 1
        rows.append((index, score, comment or ""))
    groups: dict[str, anonymity.Group] = {anonymity.COMPANY: anonymity.Group(anonymity.COMPANY, 0)}
    for index, keys in enumerate(keys_of):
        for name in keys:
            dimension = name.split(":", 1)[0]
            members = groups[name].members if name in groups else 0
            groups[name] = anonymity.Group(dimension, members | (1 << index))
    counts = {name: anonymity.size(group.members, weights) for name, group in groups.items()}
    numbers = anonymity.visible(groups, weights, k)
    commentable = {name: g for name, g in groups.items() if g.dimension in (anonymity.COMPANY, "team")}
    comments = anonymity.visible(commentable, weights, ck) & numbers
    found = Cuts(groups, counts, numbers, comments, rows, keys_of)
    if len(_CUTS) > 256:
        _CUTS.clear()
    _CUTS[key] = found
    return found


def _label(key: str) -> str:
    return key.split(":", 1)[1] if ":" in key else key


async def results(
    survey: Survey, pulse_round: PulseRound, settings: Settings, question: str | None = None, by: str = "team"
) -> dict:
    """A closed round's metric per team (with parents) or per attribute; only groups every rule lets through."""
    if pulse_round.status != "closed":
        raise BadRequest(
            "Results are shown for closed rounds only, so that no day-by-day difference can single out anyone."
        )
    if by not in DIMENSIONS:
        raise BadRequest(f"by must be one of {', '.join(DIMENSIONS)}.")
    question = question or survey.question.id
    if question not in pulse_round.questions:
        raise BadRequest(f"Round {pulse_round.number} did not ask {question!r}.")
    found = await cuts(pulse_round, question, settings)
    hist: dict[str, list[int]] = {}
    for profile, score, _ in found.rows:
        for name in found.keys_of[profile]:
            hist.setdefault(name, [0] * 11)[score] += 1
    wanted = [anonymity.COMPANY, *sorted(n for n in found.groups if n.split(":", 1)[0] == by)]
    groups = []
    for name in wanted:
        if name in found.numbers:
            if question == survey.question.id:
                estimate = metrics.estimate("enps", hist[name])
            else:
                estimate = metrics.mean_estimate(hist[name], 0, 10)
            groups.append(
                {
                    "group": _label(name),
                    "suppressed": False,
                    "value": estimate.value,
                    "n": estimate.n,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                }
            )
        else:
            groups.append({"group": _label(name), "suppressed": True})  # not even the count: it could be subtracted
    return {
        "round": pulse_round.number,
        "question": question,
        "by": by,
        "k": settings.anonymity_min_group,
        "groups": groups,
        "metric": "enps" if question == survey.question.id else "mean",
    }


async def comments(pulse_round: PulseRound, question: str, settings: Settings, group: str) -> list[str] | None:
    """A group's comments on a question, sorted (order says nothing), or None when the list may not be shown."""
    found = await cuts(pulse_round, question, settings)
    if group not in found.comments:
        return None
    return sorted(text for profile, _, text in found.rows if text and group in found.keys_of[profile])
