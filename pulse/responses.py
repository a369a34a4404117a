"""Record answers: provisional on the first human signal, confirmed when nothing contradicts it.

Link scanners fetch links (a GET records nothing), run scripts and click buttons. What they do not do is what
no person does either: post less than a second after the page was rendered, fill the hidden honeypot, or pick
three or more different scores inside one second (a flurry). Those are flagged and never counted. A person who
changes their mind — taps 9, then 10 a moment later, or walks the scale with the arrow keys — is not a bot: the
page settles on the score they stop at, and the last settled score is the one that counts. An answer becomes
part of the numbers (and opens a case when unhappy) when its author adds a comment, or when SETTLE_SECONDS pass
with no newer score.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from pulse import db, fields, followups, loyalty, rollups, webhooks
from pulse.catalog import Catalog, Survey
from pulse.models import FlaggedAttempt, Invitation, Response, SurveyVersion
from pulse.settings import Settings
from pulse.writer import GroupCommit

MIN_RENDER_SECONDS = 1.0
SETTLE_SECONDS = 3.0  # an answer with no comment counts once this long has passed without a newer score
FLURRY_SECONDS = 1.0  # this many different scores within this long: nobody does that
FLURRY_SCORES = 3
FLURRY_QUIET = 10.0  # after a flurry, the page's posts are ignored for this long
MAX_COMMENT = 5000

# why an attempt was not counted
HONEYPOT, TOO_FAST, FLURRY, BAD_NONCE = "honeypot", "too_fast", "score_flurry", "bad_nonce"
COUNTED = ("recorded", "confirmed")  # outcomes that count (now, or once settled)


@dataclass(frozen=True)
class Answer:
    score: int
    comment: str | None  # None: the form had no comment field; "" clears a comment
    locale: str
    rendered_at: float  # from the page's signed nonce
    honeypot: str = ""
    flurry: bool = False  # the page saw three or more different scores clicked inside a second


async def flag(survey_id: str, reason: str, invitation_id: int | None = None, score: int | None = None) -> None:
    await FlaggedAttempt.create(survey_id=survey_id, invitation_id=invitation_id, reason=reason, score=score)


def suspicious(answer: Answer, now: datetime) -> str | None:
    """The reason a POST looks automated, before anything is read from the database."""
    if answer.honeypot.strip():
        return HONEYPOT
    if now.timestamp() - answer.rendered_at < MIN_RENDER_SECONDS:
        return TOO_FAST
    return None


@dataclass(frozen=True, slots=True)
class Invited:
    """What answering through an e-mail link needs of the invitation, its contact and its touchpoint: one read."""

    id: int
    survey_id: str
    locale: str
    attributes: dict
    first_purchase_at: datetime | None
    touchpoint_type: str | None = None
    team_id: int | None = None
    channel: str | None = None
    stage: str | None = None
    occurred_at: datetime | None = None
    recovery: bool = False  # a resolved case's follow-up question (pulse/recovery.py)


# one statement with fixed text, not an ORM query with two joins: the token lookup is on every answer's path, and
# building it through the ORM cost a quarter of the server's time under load; read on the event loop's own
# connection, not through a hop to SQLite's thread (bench/README.md)
_INVITED = (
    "SELECT i.id, i.survey_id, i.locale, c.attributes, c.first_purchase_at,"
    " t.type, t.team_id, t.channel, t.stage, t.occurred_at,"
    " EXISTS (SELECT 1 FROM followup_case f WHERE f.recovery_invitation_id = i.id)"
    " FROM invitation i JOIN contact c ON c.id = i.contact_id LEFT JOIN touchpoint t ON t.id = i.touchpoint_id"
    " WHERE i.id = ?"
)


async def invited(invitation_id: int) -> Invited | None:
    """The customer invitation with this id, with what its answer is analysed by; None if there is none."""
    rows = await db.point_read(_INVITED, [invitation_id])
    if not rows:
        return None
    (id_, survey_id, locale, attributes, first_purchase_at, kind, team_id, channel, stage, occurred_at, recovery) = (
        rows[0]
    )
    return Invited(
        id_, survey_id, locale, db.as_json(attributes) or {}, db.as_datetime(first_purchase_at), kind, team_id,
        channel, stage, db.as_datetime(occurred_at), bool(recovery),
    )  # fmt: skip


def snapshot(invitation: Invited | None, settings: Settings, extra: dict | None = None) -> dict:
    """The dimensions an answer is analysed by, frozen at answer time."""
    dims: dict = dict(extra or {})
    if invitation is None:
        return dims
    for name in settings.segment_attributes:
        value = invitation.attributes.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)  # segments are text
        # Ingest refuses a value the rollups cannot hold, but one stored before a setting named it as a segment
        # may be longer: the answer is kept without that segment rather than lost to the rollup's column.
        if fields.SEGMENT_VALUE.problem(text) is None:
            dims[name] = text
    if invitation.first_purchase_at and invitation.occurred_at is not None:
        dims["days_since_sale"] = max((invitation.occurred_at - invitation.first_purchase_at).days, 0)
    return dims


_VERSIONS: dict[tuple[str, str, str], int | None] = {}


async def _version_id(survey: Survey, settings: Settings) -> int | None:
    """The stored version of this definition (recorded at start-up; remembered, it never changes). Remembered per
    database: ids differ from one database to another, and a process may open several (the tests do)."""
    key = (settings.database_url, survey.id, survey.checksum)
    if key not in _VERSIONS:
        version = await SurveyVersion.get_or_none(survey_id=survey.id, checksum=survey.checksum)
        if version is None:
            return None
        _VERSIONS[key] = version.id
    return _VERSIONS[key]


def _history_entry(response: Response, now: datetime) -> dict:
    """What the answer was (score and comment, and when it was given) before it changed at `now`."""
    given = response.answered_at or now
    return {"score": response.score, "comment": response.comment, "at": given.isoformat(), "until": now.isoformat()}


def _flurry(response: Response, answer: Answer, now: datetime) -> bool:
    """Three or more different scores inside FLURRY_SECONDS, counting this one: no person picks like that."""
    if answer.flurry:
        return True
    if response.id is None:
        return False
    since = now - timedelta(seconds=FLURRY_SECONDS)
    recent = {answer.score}
    if response.answered_at is not None and response.answered_at >= since:
        recent.add(response.score)
    for entry in response.history:
        if datetime.fromisoformat(entry["at"]) >= since:
            recent.add(entry["score"])
    return len(recent) >= FLURRY_SCORES


def _one_click(answer: Answer) -> bool:
    """The first score for an invitation, provisional until it settles: no comment, no flurry (nearly every answer)."""
    return not answer.flurry and not (answer.comment and answer.comment.strip())


async def answer_invitation(
    writer: GroupCommit,
    invitation: Invited,
    survey: Survey,
    answer: Answer,
    settings: Settings,
    now: datetime | None = None,
) -> str:
    """Store an answer given through an e-mail link by the group commit; returns recorded, confirmed, flagged or
    discarded. A one-click answer goes as two fixed statements (on SQLite run in the database's thread with the rest
    of its batch); when the invitation already has an answer, or the answer is anything else, the general rules
    compare the two in a job of their own."""
    now = now or datetime.now(UTC)
    if suspicious(answer, now) is None and _one_click(answer):
        values = _first_values(invitation, await _version_id(survey, settings), survey, answer, settings, now)
        first = await writer.run(
            lambda: _insert_first(values, invitation.id, now),
            in_thread=lambda connection: _insert_first_in_thread(connection, values, invitation.id, now),
        )
        if first:
            return "recorded"
    return await writer.run(lambda: record_invitation_answer(invitation, survey, answer, settings, now))


async def record_invitation_answer(
    invitation: Invited, survey: Survey, answer: Answer, settings: Settings, now: datetime | None = None
) -> str:
    """Store an answer given through an e-mail link; returns recorded, confirmed, flagged or discarded."""
    now = now or datetime.now(UTC)
    if reason := suspicious(answer, now):
        await flag(survey.id, reason, invitation.id, answer.score)
        return "flagged"
    version_id = await _version_id(survey, settings)
    if _one_click(answer):
        values = _first_values(invitation, version_id, survey, answer, settings, now)
        if await _insert_first(values, invitation.id, now):
            return "recorded"
    async with in_transaction():
        response = await Response.filter(invitation_id=invitation.id).select_for_update().first()
        if response is None:
            response = Response(
                survey_id=survey.id,
                survey_version_id=version_id,
                invitation_id=invitation.id,
                touchpoint_type=invitation.touchpoint_type,
                team_id=invitation.team_id,
                channel=invitation.channel,
                stage=invitation.stage,
                dimensions=snapshot(invitation, settings),
            )
            await Invitation.filter(id=invitation.id).update(status="answered", answered_at=now)
        outcome = await _apply(response, survey, answer, settings, now)
    return outcome


_FIRST_COLUMNS = (
    "survey_id", "survey_version_id", "invitation_id", "question_id", "score", "scores", "comment", "locale",
    "answered_at", "day", "confirmed", "touchpoint_type", "team_id", "channel", "stage", "dimensions", "history",
    "provisional_until", "discarded", "created_at", "updated_at",
)  # fmt: skip
_INSERT_FIRST = (
    f"INSERT INTO response ({', '.join(_FIRST_COLUMNS)}) VALUES ({db.marks(len(_FIRST_COLUMNS))})"  # noqa: S608
    " ON CONFLICT (invitation_id) DO NOTHING RETURNING id"
)
_MARK_ANSWERED = "UPDATE invitation SET status = 'answered', answered_at = ? WHERE id = ?"


def _first_values(
    invitation: Invited, version_id: int | None, survey: Survey, answer: Answer, settings: Settings, now: datetime
) -> tuple:
    """The row `_apply` stores for a new answer with no comment, as the values of _INSERT_FIRST."""
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    question = survey.question.id
    dims = snapshot(invitation, settings)
    return (
        survey.id, version_id, invitation.id, question, answer.score, json.dumps({question: answer.score}), "",
        answer.locale, now, day, False, invitation.touchpoint_type, invitation.team_id, invitation.channel,
        invitation.stage, json.dumps(dims), "[]", now + timedelta(seconds=SETTLE_SECONDS), False, now, now,
    )  # fmt: skip


async def _insert_first(values: tuple, invitation_id: int, now: datetime) -> bool:
    """Store the first, uncommented score of an invitation in two statements; False when the invitation already
    has an answer (then the general path compares the two).

    What `_apply` stores for a new answer with no comment, without the ORM: this runs for nearly every answer,
    and building its five statements through the ORM cost more than the rest of the request.
    """
    if not await db.fetch(_INSERT_FIRST, values):
        return False
    await db.execute(_MARK_ANSWERED, [now, invitation_id])
    return True


def _insert_first_in_thread(connection: sqlite3.Connection, values: tuple, invitation_id: int, now: datetime) -> bool:
    """`_insert_first` as statements on the sqlite3 connection, for the group commit's one-hop batches (the
    datetimes are bound by the adapters Tortoise registers for sqlite3, so the row is the one Tortoise writes)."""
    if connection.execute(_INSERT_FIRST, values).fetchone() is None:
        return False
    connection.execute(_MARK_ANSWERED, (now, invitation_id))
    return True


async def record_link_answer(
    survey: Survey,
    nonce: str,
    dimensions: dict,
    team_id: int | None,
    answer: Answer,
    settings: Settings,
    now: datetime | None = None,
) -> str:
    """Store an answer given through a public survey link: one response per rendered page."""
    now = now or datetime.now(UTC)
    if reason := suspicious(answer, now):
        await flag(survey.id, reason, None, answer.score)
        return "flagged"
    key = hashlib.sha256(nonce.encode()).hexdigest()
    async with in_transaction():
        response = await Response.filter(link_key=key).select_for_update().first()
        if response is None:
            response = Response(
                survey_id=survey.id,
                survey_version_id=await _version_id(survey, settings),
                link_key=key,
                team_id=team_id,
                channel=dimensions.get("channel", "link"),
                dimensions=dimensions,
            )
        outcome = await _apply(response, survey, answer, settings, now)
    return outcome


async def _apply(response: Response, survey: Survey, answer: Answer, settings: Settings, now: datetime) -> str:
    """The shared rules for a new or repeated answer; runs inside the caller's transaction."""
    new = response.id is None
    if _flurry(response, answer, now):
        await flag(survey.id, FLURRY, response.invitation_id, answer.score)
        if not new and not response.confirmed:
            response.discarded = True
            await response.save()
        return "discarded"
    if not new and response.discarded and (now - response.updated_at).total_seconds() < FLURRY_QUIET:
        await flag(survey.id, FLURRY, response.invitation_id, answer.score)  # the same flurry, still going
        return "discarded"
    comment = answer.comment if answer.comment is not None else (response.comment if not new else "")
    if answer.comment is None and not new and survey.band_for(answer.score) != survey.band_for(response.score):
        comment = ""  # a reason given for another band is not this score's reason: it stays in the history
    confirm = bool(answer.comment and answer.comment.strip())
    previous = None if new else response.score
    previous_day = None if new else response.day
    was_confirmed = response.confirmed
    if not new and (previous != answer.score or response.comment != comment):
        response.history = [*response.history, _history_entry(response, now)]
    response.score = answer.score
    response.scores = {survey.question.id: answer.score}
    response.question_id = survey.question.id
    response.comment = comment
    response.locale = answer.locale
    response.answered_at = now
    response.day = now.astimezone(ZoneInfo(settings.timezone)).date()
    response.discarded = False
    if confirm or was_confirmed:
        response.confirmed = True
        response.provisional_until = None
    else:
        response.provisional_until = now + timedelta(seconds=SETTLE_SECONDS)
    if not new:
        await response.save()
    else:
        try:
            async with in_transaction():  # a savepoint: a lost race rolls back this insert only
                await response.save()
        except IntegrityError:
            return "discarded"  # a concurrent first POST for the same page won the race; this one is a duplicate
    if response.confirmed and not was_confirmed:
        await on_confirmed(response, survey, settings, now)
        return "confirmed"
    if was_confirmed:  # given again, even with the same score, it is now the contact's newest answer
        await loyalty.record(response)
    if was_confirmed and previous is not None and (previous != answer.score or confirm):
        await rollups.apply(response, previous, previous_day, -1, settings.segment_attributes)
        await rollups.apply(response, response.score, response.day, 1, settings.segment_attributes)
        await on_changed(response, survey, previous, settings, now)
    return "confirmed" if response.confirmed else "recorded"


async def on_confirmed(response: Response, survey: Survey, settings: Settings, now: datetime) -> None:
    """The answer now counts: in the trends, an unhappy one opens a case, and the webhook hears of it."""
    await rollups.apply(response, response.score, response.day, 1, settings.segment_attributes)
    await loyalty.record(response)
    if survey.is_unhappy(response.score):
        await followups.open_case(response, survey, settings, now)
    await webhooks.enqueue("response.recorded", response_payload(response, survey), settings, now)


async def on_changed(response: Response, survey: Survey, previous: int, settings: Settings, now: datetime) -> None:
    """A confirmed answer was changed by its author with the same link."""
    await followups.answer_changed(response, survey, previous, settings, now)
    await webhooks.enqueue(
        "response.recorded", {**response_payload(response, survey), "previous_score": previous}, settings, now
    )


def response_payload(response: Response, survey: Survey) -> dict:
    return {
        "id": response.id,
        "survey": survey.id,
        "question": response.question_id,
        "score": response.score,
        "band": survey.band_for(response.score).name,
        "comment": response.comment,
        "locale": response.locale,
        "answered_at": response.answered_at.isoformat() if response.answered_at else None,
        "invitation_id": response.invitation_id,
        "touchpoint_type": response.touchpoint_type,
        "team_id": response.team_id,
        "channel": response.channel,
        "stage": response.stage,
        "dimensions": response.dimensions,
    }


async def confirm_due(catalog: Catalog, settings: Settings, now: datetime | None = None) -> int:
    """Confirm provisional answers whose quiet period has passed (a worker step); returns how many."""
    now = now or datetime.now(UTC)
    due = await Response.filter(confirmed=False, discarded=False, provisional_until__lte=now).limit(500)
    for response in due:
        survey = catalog.get(response.survey_id)
        async with in_transaction():
            # updated_at as auto_now would set it: caches of answers (pulse/insights.py) see the change by it
            claimed = await Response.filter(id=response.id, confirmed=False, discarded=False).update(
                confirmed=True, provisional_until=None, updated_at=datetime.now(UTC)
            )
            if claimed and survey is not None:  # another worker may have confirmed it first
                response.confirmed = True
                await on_confirmed(response, survey, settings, now)
    return len(due)
