"""Follow-up cases: an unhappy answer gets an owner and a due date, so no complaint is lost."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from pulse import access, audit, db, recovery, webhooks
from pulse.catalog import Catalog, Survey
from pulse.errors import BadRequest, Conflict
from pulse.i18n import N_

__all__ = ["Conflict"]
from pulse.models import CaseNote, FollowUpCase, Invitation, OutboxMessage, Response, Team, User
from pulse.settings import Settings
from pulse.touchpoints import mail_domain

STATUSES = ("open", "in_progress", "resolved", "closed_no_action")
OPEN_STATUSES = ("open", "in_progress")
TRANSITIONS = {
    "open": {"in_progress", "resolved", "closed_no_action"},
    "in_progress": {"open", "resolved", "closed_no_action"},
    "resolved": {"open"},  # reopen
    "closed_no_action": {"open"},
}


def add_business_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """`days` working days (Monday to Friday) after `start`, at the same local time."""
    local = start.astimezone(tz)
    while local.weekday() >= 5:  # an answer on a weekend starts the clock on Monday morning
        local = (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    remaining = days
    while remaining > 0:
        local += timedelta(days=1)
        if local.weekday() < 5:
            remaining -= 1
    return local.astimezone(UTC)


async def default_owner(settings: Settings) -> User | None:
    if settings.default_case_owner:
        user = await User.get_or_none(email=settings.default_case_owner.lower(), is_active=True)
        if user:
            return user
    return await User.filter(role="admin", is_active=True).order_by("id").first()


async def owner_for(team_id: int | None, settings: Settings) -> User | None:
    """The team's owner, else the nearest ancestor's, else the default owner."""
    seen: set[int] = set()
    while team_id is not None and team_id not in seen:
        seen.add(team_id)
        team = await Team.get_or_none(id=team_id).select_related("owner")
        if team is None:
            break
        if team.owner is not None and team.owner.is_active:
            return team.owner
        team_id = team.parent_id
    return await default_owner(settings)


async def _notify(kind: str, case: FollowUpCase, user: User, settings: Settings, now: datetime) -> None:
    await OutboxMessage.create(
        kind=kind,
        to_email=user.email,
        locale=user.locale,
        payload={"case_id": case.id, "user_id": user.id},
        status="pending",
        next_attempt_at=now,
        message_id=f"<case-{case.id}.{kind}.{secrets.token_hex(6)}@{mail_domain(settings.mail_from)}>",
    )


async def link_case_allowed(team_id: int | None, settings: Settings, now: datetime) -> bool:
    """Whether one more answer through a public link may open a case for this team this hour. Anyone can post
    those, and each case e-mails a person: the cap keeps a flood from burying the team's real cases."""
    if team_id is not None:  # on PostgreSQL, answers for one team at once are counted one after the other
        await Team.filter(id=team_id).select_for_update().first()
    since = now - timedelta(hours=1)
    opened = await FollowUpCase.filter(from_link=True, team_id=team_id, created_at__gte=since).count()
    return opened < settings.link_cases_per_hour


async def open_case(response: Response, survey: Survey, settings: Settings, now: datetime) -> FollowUpCase | None:
    """Open a case for an unhappy answer (once per answer, within the public links' cap) and tell its owner."""
    if await FollowUpCase.exists(response_id=response.id):
        return None
    if response.invitation_id is not None and (reopened := await reopen_for_follow_up(response, settings, now)):
        return reopened  # still unhappy after the case's follow-up question: the same case, not a new one
    from_link = response.invitation_id is None and response.link_key is not None
    if from_link and not await link_case_allowed(response.team_id, settings, now):
        return None  # the answer still counts in the trends (and in the orphans' count)
    contact_id = None
    if response.invitation_id:
        found = await Invitation.filter(id=response.invitation_id).values_list("contact_id", flat=True)
        contact_id = found[0] if found else None
    owner = await owner_for(response.team_id, settings)
    case = await FollowUpCase.create(
        response_id=response.id,
        contact_id=contact_id,
        team_id=response.team_id,
        owner=owner,
        status="open",
        due_at=add_business_days(now, settings.case_sla_business_days, ZoneInfo(settings.timezone)),
        survey_id=survey.id,
        score=response.score,
        from_link=from_link,
    )
    if owner is not None:
        await _notify("case_opened", case, owner, settings, now)
    await webhooks.enqueue("case.opened", case_payload(case), settings, now)
    return case


async def reopen_for_follow_up(response: Response, settings: Settings, now: datetime) -> FollowUpCase | None:
    """The case whose follow-up question (pulse/recovery.py) this unhappy answer replies to, reopened with a new
    due date and its owner told; None when the answer replies to no case's follow-up."""
    case = await FollowUpCase.get_or_none(recovery_invitation_id=response.invitation_id)
    if case is None:
        return None
    data = {"from": case.status, "to": "open", "reason": "follow_up"}  # Pulse's doing: no action of the owner
    if case.status not in OPEN_STATUSES:
        await CaseNote.create(case=case, author=None, kind="status", body="", data=data)
        case.status = "open"
        case.due_at = add_business_days(now, settings.case_sla_business_days, ZoneInfo(settings.timezone))
        case.escalated_at = None
        await case.save(update_fields=["status", "due_at", "escalated_at", "updated_at"])
        owner = await User.get_or_none(id=case.owner_id, is_active=True) if case.owner_id else None
        if owner is not None:
            await _notify("case_opened", case, owner, settings, now)
    await webhooks.enqueue("case.updated", case_payload(case), settings, now)
    return case


async def answer_changed(response: Response, survey: Survey, previous: int, settings: Settings, now: datetime) -> None:
    """The author changed a confirmed answer: a case is never deleted, it gets a note (or opens now)."""
    case = await FollowUpCase.get_or_none(response_id=response.id)
    if case is None:
        if survey.is_unhappy(response.score):
            await open_case(response, survey, settings, now)
        return
    data = {"from": previous, "to": response.score, "survey": response.survey_id, "comment": response.comment or ""}
    await CaseNote.create(case=case, author=None, kind="score_changed", body="", data=data)
    case.score = response.score
    await case.save(update_fields=["score", "updated_at"])
    await webhooks.enqueue("case.updated", case_payload(case), settings, now)


async def may_own(user: User, case: FollowUpCase) -> BadRequest | None:
    """Why `user` may not own `case` (None: they may): they must work cases and see the case's team."""
    if not access.allowed(user, "cases:write"):
        return BadRequest(
            N_("%(email)s cannot work on cases: the role %(role)s does not allow it."),
            email=user.email,
            role=user.role,
            codes={"role": "role"},
        )
    scope = await access.team_ids(user)
    if scope is not None and (case.team_id is None or case.team_id not in scope):
        team = await Team.get_or_none(id=case.team_id) if case.team_id else None
        if team is None:
            return BadRequest(N_("%(email)s cannot see the team of this case (no team)."), email=user.email)
        return BadRequest(
            N_("%(email)s cannot see the team of this case (%(team)s)."), email=user.email, team=team.slug
        )
    return None


async def update_case(
    case: FollowUpCase,
    settings: Settings,
    *,
    status: str | None = None,
    owner_email: str | None = None,
    note: str | None = None,
    author: User | None = None,
    now: datetime | None = None,
    actor: str | None = None,
    source: str = "",
    catalog: Catalog | None = None,
) -> FollowUpCase:
    """Change a case's status or owner and/or add a note; refuses (changing nothing) what makes no sense.
    With an `actor`, a new owner (`case.reassigned`) and a new status (`case.status_changed`) are in the audit log.
    With the `catalog`, a case that becomes resolved gets its one follow-up question (pulse/recovery.py).

    1. Check everything first, so a refusal leaves the case, its notes and the outbox as they were.
    2. Then apply it all in one transaction.
    """
    now = now or datetime.now(UTC)
    if status == case.status:
        status = None
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(N_("status must be one of %(statuses)s."), statuses=", ".join(STATUSES))
        if status not in TRANSITIONS[case.status]:
            raise Conflict(
                N_("A case that is %(old)s cannot become %(new)s."),
                old=case.status,
                new=status,
                codes={"old": "case_status", "new": "case_status"},
            )
    owner = None
    if owner_email is not None:
        owner = await User.get_or_none(email=owner_email.strip().lower(), is_active=True)
        if owner is None:
            raise BadRequest(N_("No active user has the e-mail %(email)s."), email=owner_email)
        if refusal := await may_own(owner, case):
            raise refusal
    if note is not None:
        if not note.strip():
            raise BadRequest(N_("A note cannot be empty."))
        if len(note) > 10000:
            raise BadRequest(N_("A note must be at most 10,000 characters."))
    target = f"case {case.id}"
    async with in_transaction():
        if status is not None:
            data = {"from": case.status, "to": status}
            await CaseNote.create(case=case, author=author, kind="status", body="", data=data)
            if actor is not None:
                await audit.record("case.status_changed", actor=actor, target=target, source=source, details=data)
            case.status = status
        if owner is not None and owner.id != case.owner_id:
            if actor is not None:
                before = await User.get_or_none(id=case.owner_id) if case.owner_id else None
                data = {"from": before.email if before else None, "to": owner.email}
                await audit.record("case.reassigned", actor=actor, target=target, source=source, details=data)
            case.owner = owner
            await CaseNote.create(case=case, author=author, kind="owner", body="", data={"user_id": owner.id})
            await _notify("case_opened", case, owner, settings, now)
        if note is not None:
            await CaseNote.create(case=case, author=author, body=note.strip())
        # only what this changes: a stale copy must not write back the follow-up another request recorded
        await case.save(update_fields=["status", "owner_id", "updated_at"])
        await webhooks.enqueue("case.updated", case_payload(case), settings, now)
    if status == "resolved" and catalog is not None:
        await recovery.offer(case, catalog, settings, now)
    return case


async def escalate_overdue(settings: Settings, now: datetime | None = None) -> int:
    """Overdue open cases go to the parent team's owner, once each (a worker step)."""
    now = now or datetime.now(UTC)
    overdue = await FollowUpCase.filter(status__in=OPEN_STATUSES, due_at__lt=now, escalated_at=None).limit(200)
    for case in overdue:
        async with in_transaction():
            if not await FollowUpCase.filter(id=case.id, escalated_at=None).update(escalated_at=now):
                continue  # another worker escalated it
            team = await Team.get_or_none(id=case.team_id) if case.team_id else None
            target = await owner_for(team.parent_id, settings) if team and team.parent_id else None
            target = target or await default_owner(settings)
            if target is None:
                continue
            data = {"user_id": target.id}
            await CaseNote.create(case=case, author=None, kind="escalated", body="", data=data)
            await _notify("case_escalated", case, target, settings, now)
            await webhooks.enqueue("case.updated", {**case_payload(case), "escalated_to": target.email}, settings, now)
    return len(overdue)


async def orphans(catalog: Catalog) -> dict[str, int]:
    """Complaints nobody owns: confirmed unhappy answers with no case, and open cases with no owner."""
    without_case = 0
    for survey in catalog:
        if survey.audience != "customer":
            continue  # anonymous employee answers never open a case: nobody could follow up on them
        unhappy = [n for n in survey.scores if survey.is_unhappy(n)]
        [(count,)] = await db.fetch(
            f"SELECT COUNT(*) FROM response r WHERE r.survey_id = ? AND r.confirmed = ? AND r.discarded = ?"
            f" AND r.score IN ({db.marks(len(unhappy))})"
            " AND NOT EXISTS (SELECT 1 FROM followup_case c WHERE c.response_id = r.id)"
            # an unhappy answer to a case's follow-up question reopened that case (pulse/recovery.py)
            " AND NOT EXISTS (SELECT 1 FROM followup_case c WHERE c.recovery_invitation_id = r.invitation_id)",
            [survey.id, True, False, *unhappy],
        )
        without_case += count
    without_owner = await FollowUpCase.filter(owner_id=None, status__in=OPEN_STATUSES).count()
    return {"unhappy_answers_without_case": without_case, "open_cases_without_owner": without_owner}


def case_payload(case: FollowUpCase) -> dict:
    return {
        "id": case.id,
        "status": case.status,
        "survey": case.survey_id,
        "score": case.score,
        "response_id": case.response_id,
        "contact_id": case.contact_id,
        "team_id": case.team_id,
        "owner_id": case.owner_id,
        "due_at": case.due_at.isoformat(),
        "escalated_at": case.escalated_at.isoformat() if case.escalated_at else None,
    }
