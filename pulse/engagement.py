"""Employee engagement pulses: rounds on a schedule, anonymous answers, and results that protect anonymity.

An employee's answer is stored without the employee, the invitation, the address or the time: only the round,
the team and coarse attributes (location, role family, tenure band). The invitation records only that it was
answered, for response rates and reminders. Results are reported per closed round, never as rolling windows,
and every number passes `anonymity.visible` first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tortoise.transactions import in_transaction

from pulse import anonymity, db, i18n, metrics, rules, touchpoints
from pulse.catalog import Catalog, Survey
from pulse.errors import BadRequest, Conflict
from pulse.models import Employee, Invitation, OutboxMessage, PulseRound, Response, Team
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


async def run_schedule(catalog: Catalog, settings: Settings, now: datetime | None = None) -> int:
    """A worker step: open a round when one is due, send reminders, close rounds; returns work done."""
    now = now or datetime.now(UTC)
    survey = programme(catalog)
    if survey is None or survey.schedule is None:
        return 0
    done = 0
    for pulse_round in await PulseRound.filter(survey_id=survey.id, status="open", closes_at__lte=now):
        async with in_transaction():
            await PulseRound.filter(id=pulse_round.id).update(status="closed")
            ids = await Invitation.filter(round_id=pulse_round.id).values_list("id", flat=True)
            await Invitation.filter(id__in=ids, status__in=["scheduled", "sent"]).update(status="expired")
            await OutboxMessage.filter(invitation_id__in=ids, status="pending").update(status="cancelled")
        done += 1
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
    last = await PulseRound.filter(survey_id=survey.id).order_by("-number").first()
    if last is None or last.opens_at + timedelta(days=survey.schedule.every_days) <= now:
        await open_round(survey, settings, now)
        done += 1
    return done


@dataclass(frozen=True)
class PulseAnswer:
    scores: dict[str, int]
    comments: dict[str, str]  # per question, optional


async def record(invitation: Invitation, survey: Survey, answer: PulseAnswer, today: date) -> None:
    """Store one employee's answers anonymously; the invitation keeps only that it was answered."""
    pulse_round = await PulseRound.get(id=invitation.round_id)
    if pulse_round.status != "open":
        raise Conflict("This round is closed.")
    if set(answer.scores) != set(pulse_round.questions):
        raise BadRequest("Answer every question of this pulse.")
    employee = await Employee.get(id=invitation.employee_id)
    dims = {
        "location": employee.attributes.get("location"),
        "role_family": employee.attributes.get("role_family"),
        "tenure": tenure_band(employee.start_date, today),
    }
    dims = {k: v for k, v in dims.items() if v}
    async with in_transaction():
        claimed = await Invitation.filter(id=invitation.id, status__in=["scheduled", "sent"]).update(status="answered")
        if not claimed:
            raise Conflict("This pulse was already answered with this link.")
        for question, score in answer.scores.items():
            await Response.create(
                survey_id=survey.id,
                round_id=pulse_round.id,
                question_id=question,
                score=score,
                scores={question: score},
                comment=answer.comments.get(question, ""),
                locale=invitation.locale,
                answered_at=None,
                day=pulse_round.closes_at.date(),
                confirmed=True,
                team_id=employee.team_id,
                channel="pulse",
                dimensions=dims,
            )


async def _histograms(round_id: int, question: str) -> list[tuple]:
    return await db.fetch(
        "SELECT team_id, dimensions, score FROM response WHERE round_id = ? AND question_id = ? AND discarded = ?",
        [round_id, question, False],
    )


async def results(
    survey: Survey, pulse_round: PulseRound, settings: Settings, question: str | None = None, by: str = "team"
) -> dict:
    """A closed round's metric per team (with parents) or per attribute, with suppression applied."""
    if pulse_round.status != "closed":
        raise BadRequest(
            "Results are shown for closed rounds only, so that no day-by-day difference can single out anyone."
        )
    if by not in ("team", *ATTRIBUTES):
        raise BadRequest(f"by must be team, {', '.join(ATTRIBUTES)}.")
    question = question or survey.question.id
    if question not in pulse_round.questions:
        raise BadRequest(f"Round {pulse_round.number} did not ask {question!r}.")
    k = settings.anonymity_min_group
    rows = await _histograms(pulse_round.id, question)
    hist: dict[str, list[int]] = {"company": [0] * 11}
    counts: dict[str, int] = {"company": 0}
    partitions: list[anonymity.Partition] = []
    teams = await Team.all().values_list("id", "slug", "parent_id")
    slug = {tid: s for tid, s, _ in teams}
    parent = {tid: p for tid, _, p in teams}
    for team_id, dims, score in rows:
        keys = ["company"]
        if by == "team":
            current, seen = team_id, set()
            while current is not None and current not in seen:
                seen.add(current)
                keys.append(f"team:{slug[current]}")
                current = parent.get(current)
        else:
            value = (db.as_json(dims) or {}).get(by)
            if value:
                keys.append(f"{by}:{value}")
        for key in keys:
            hist.setdefault(key, [0] * 11)[score] += 1
            counts[key] = counts.get(key, 0) + 1
    if by == "team":
        children: dict[str, list[str]] = {"company": [f"team:{s}" for _, s, p in teams if p is None]}
        for _, s, p in teams:
            if p is not None:
                children.setdefault(f"team:{slug[p]}", []).append(f"team:{s}")
        for whole, parts in children.items():
            counts.setdefault(whole, 0)
            for part in parts:
                counts.setdefault(part, 0)
            partitions.append(anonymity.Partition(whole, parts))
    else:
        partitions.append(anonymity.Partition("company", [key for key in counts if key != "company"]))
    shown = anonymity.visible(counts, partitions, k)
    groups = []
    for key in sorted(counts, key=lambda g: (g != "company", g)):
        if counts[key] == 0 and key != "company":
            continue
        label = key.split(":", 1)[1] if ":" in key else "company"
        if key in shown:
            estimate = metrics.estimate("enps", hist[key]) if question == survey.question.id else _mean(hist[key])
            groups.append(
                {
                    "group": label,
                    "suppressed": False,
                    "value": estimate.value,
                    "n": estimate.n,
                    "ci_low": estimate.ci_low,
                    "ci_high": estimate.ci_high,
                }
            )
        else:
            groups.append({"group": label, "suppressed": True})  # not even the count: it could be subtracted
    return {
        "round": pulse_round.number,
        "question": question,
        "by": by,
        "k": k,
        "groups": groups,
        "metric": "enps" if question == survey.question.id else "mean",
    }


def _mean(hist: list[int]) -> metrics.Estimate:
    average, se, n = metrics.mean(hist, 0, 10)
    if average is None or se is None:
        return metrics.Estimate("mean", None, 0, None, None, None)
    return metrics.Estimate("mean", average, n, average - metrics.Z95 * se, average + metrics.Z95 * se, se)
