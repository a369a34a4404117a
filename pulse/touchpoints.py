"""Ingest touchpoint events: validate, store idempotently, apply the rules, schedule invitations.

A batch is processed set-wise (a handful of queries per batch, not per event) in one transaction, so a
1,000-event batch costs about as much as a few single inserts.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import dataclasses
import io
import json
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from tortoise.connection import connections
from tortoise.transactions import in_transaction

from pulse import db, fields, i18n, privacy, rules
from pulse.catalog import Catalog
from pulse.models import Invitation, OutboxMessage, Team
from pulse.settings import Settings

MAX_BATCH = 1000
CLOCK_SKEW = timedelta(minutes=5)
EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+$")
EVENT_FIELDS = {
    "external_id",
    "source",
    "type",
    "occurred_at",
    "contact",
    "team",
    "agent",
    "channel",
    "stage",
    "attributes",
}
CONTACT_FIELDS = {"external_id", "email", "name", "locale", "timezone", "attributes"}


@dataclass(slots=True)
class ContactIn:
    external_id: str
    email: str
    name: str | None
    locale: str | None
    timezone: str | None
    attributes: dict[str, Any] | None


@dataclass(slots=True)
class EventIn:
    index: int
    external_id: str
    source: str
    type: str
    occurred_at: datetime
    contact: ContactIn
    team: str | None
    agent: str | None
    channel: str | None
    stage: str | None
    attributes: dict[str, Any]


@dataclass(slots=True)
class Outcome:
    """One line of the answer: what happened to the event at `index`."""

    index: int
    external_id: Any
    status: str  # invited | skipped | duplicate | invalid
    reason: str | None = None
    invitation_id: int | None = None
    send_at: datetime | None = None
    survey: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "external_id": self.external_id,
            "status": self.status,
            "reason": self.reason,
            "survey": self.survey,
            "invitation_id": self.invitation_id,
            "send_at": self.send_at.isoformat().replace("+00:00", "Z") if self.send_at else None,
        }
        if self.errors:
            data["errors"] = self.errors
        return data


def results_json(outcomes: Sequence[Outcome]) -> bytes:
    """The 202's body, {"results": [outcome.as_json(), ...]}, as JSONResponse renders it (same bytes), without a
    dict per event: a batch answers 1,000 lines of a few statuses, reasons, surveys and send times."""
    texts: dict[str | None, str] = {None: "null"}
    times: dict[tuple, str] = {}
    lines = []
    for outcome in outcomes:
        if outcome.errors or type(outcome.external_id) is not str:
            lines.append(json.dumps(outcome.as_json(), ensure_ascii=False, allow_nan=False, separators=(",", ":")))
            continue
        status, reason, survey, send_at = outcome.status, outcome.reason, outcome.survey, outcome.send_at
        if (status_json := texts.get(status)) is None:
            status_json = texts[status] = encode_basestring(status)
        if (reason_json := texts.get(reason)) is None:
            reason_json = texts[reason] = encode_basestring(reason)  # type: ignore[arg-type]
        if (survey_json := texts.get(survey)) is None:
            survey_json = texts[survey] = encode_basestring(survey)  # type: ignore[arg-type]
        if send_at is None:
            send_at_json = "null"
        elif (send_at_json := times.get((send_at, send_at.utcoffset()))) is None:
            send_at_json = times[send_at, send_at.utcoffset()] = encode_basestring(
                send_at.isoformat().replace("+00:00", "Z")
            )
        invitation_id = "null" if outcome.invitation_id is None else int.__repr__(outcome.invitation_id)
        lines.append(
            f'{{"index":{int.__repr__(outcome.index)},"external_id":{encode_basestring(outcome.external_id)},'
            f'"status":{status_json},"reason":{reason_json},"survey":{survey_json},'
            f'"invitation_id":{invitation_id},"send_at":{send_at_json}}}'
        )
    return f'{{"results":[{",".join(lines)}]}}'.encode()


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, name: str, message: str) -> None:
        self.items.append({"field": name, "message": message})


def _text(
    data: dict,
    name: str,
    errors: _Errors,
    spec: fields.Text,
    *,
    prefix: str = "",
    required: bool = False,
) -> str | None:
    value = data.get(name)
    label = f"{prefix}{name}"
    if value is None or value == "":
        if required:
            errors.add(label, f"{label} is required")
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and name == "external_id":
        value = str(value)  # CRMs often send numeric ids
    if not isinstance(value, str):
        errors.add(label, f"{label} must be a string")
        return None
    value = value.strip()
    if not value:  # only blanks: as missing as an absent field
        if required:
            errors.add(label, f"{label} is required")
        return None
    if problem := spec.problem(value):
        errors.add(label, f"{label} {problem}")
        return None
    return value


def _mailbox(email: str, errors: _Errors) -> str:
    """The address as SMTP will carry it: an ASCII local part, and the domain in IDNA form."""
    if not EMAIL.match(email):
        errors.add("contact.email", "contact.email is not an e-mail address")
        return email
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        errors.add("contact.email", "contact.email must have an ASCII part before the @ (SMTPUTF8 is not supported)")
        return email
    try:
        mailbox = f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        errors.add("contact.email", "contact.email has a domain that is not a valid host name")
        return email
    if problem := fields.CONTACT_EMAIL.problem(mailbox):  # the IDNA form is longer than the address as sent
        errors.add("contact.email", f"contact.email {problem}")
    return mailbox


def _attributes(value: Any, label: str, errors: _Errors, segments: Iterable[str] = ()) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add(label, f"{label} must be an object of names to plain values")
        return None
    for key, item in value.items():
        if problem := fields.ATTRIBUTE_NAME.problem(key):
            errors.add(label, f"each name in {label} {problem}")
        elif not isinstance(item, str | int | float | bool) and item is not None:
            errors.add(f"{label}.{key}", f"{label}.{key} must be a string, number, boolean or null")
        elif isinstance(item, str) and key in segments and (problem := fields.SEGMENT_VALUE.problem(item)):
            errors.add(f"{label}.{key}", f"{label}.{key} {problem} (it is a segment of the trends)")
        elif isinstance(item, str) and (problem := fields.unstorable(item)):
            errors.add(f"{label}.{key}", f"{label}.{key} {problem}")
    return value


def _occurred_at(raw: Any, now: datetime, errors: _Errors) -> datetime | None:
    if raw in (None, ""):
        errors.add("occurred_at", "occurred_at is required")
        return None
    if not isinstance(raw, str):
        errors.add("occurred_at", "occurred_at must be an ISO 8601 string such as 2026-03-01T10:00:00+01:00")
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        errors.add("occurred_at", "occurred_at must be an ISO 8601 date-time such as 2026-03-01T10:00:00+01:00")
        return None
    if parsed.tzinfo is None:
        errors.add("occurred_at", "occurred_at must include a UTC offset, such as +01:00 or Z")
    elif parsed.date() < fields.EARLIEST or parsed.astimezone(UTC).date() < fields.EARLIEST:
        # checked before the conversion: 0001-01-01T00:30+01:00 has no UTC moment to convert to
        errors.add("occurred_at", f"occurred_at must not be before {fields.EARLIEST}")
    elif parsed - now > CLOCK_SKEW:
        errors.add("occurred_at", "occurred_at is in the future")
    else:
        return parsed.astimezone(UTC)
    return None


def _limits(*specs: tuple[str, fields.Text, bool]) -> tuple:
    return tuple(
        (name, spec.max_length, spec.pattern.match if spec.pattern else None, required)
        for name, spec, required in specs
    )


# (name, longest, pattern's match, required) of the text fields of an event and of its contact
EVENT_TEXTS = _limits(
    ("external_id", fields.EVENT_ID, True),
    ("source", fields.SOURCE, False),
    ("type", fields.TOUCHPOINT_TYPE, True),
    ("team", fields.TEAM, False),
    ("agent", fields.AGENT, False),
    ("channel", fields.CHANNEL, False),
    ("stage", fields.STAGE, False),
)
CONTACT_TEXTS = _limits(
    ("external_id", fields.CONTACT_ID, True),
    ("email", fields.CONTACT_EMAIL, False),
    ("name", fields.CONTACT_NAME, False),
    ("locale", fields.CONTACT_LOCALE, False),
    ("timezone", fields.CONTACT_TIMEZONE, False),
)


def _plain_texts(data: dict, limits: tuple) -> list[str | None] | None:
    """The text fields as _text would return them, in the order of `limits`, or None when any of them needs _text
    to say what is wrong (or to convert a numeric id): the common case, without an error list per field."""
    found: list[str | None] = []
    for name, longest, match, required in limits:
        value = data.get(name)
        if value is None or value == "":
            if required:
                return None
            found.append(None)
            continue
        if type(value) is not str:
            return None
        value = value.strip()
        if not value or len(value) > longest or (match is not None and not match(value)):
            return None
        found.append(value)
    joined = "".join([text for text in found if text])
    if not (joined.isascii() and "\x00" not in joined) and fields.NOT_STORABLE.search(joined):
        return None  # isascii() reads a flag: an ASCII text has no surrogate to search for
    return found


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """The IDNA (ASCII) form of an e-mail domain, or None when it is not a valid host name."""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _plain_event(index: int, data: dict, now: datetime) -> EventIn | None:
    """The event, when it is valid and plain (what most batches hold); None sends it to the full checks of
    parse_event, which accept exactly the same events and say what is wrong with the others."""
    contact = data.get("contact")
    if (
        not data.keys() <= EVENT_FIELDS
        or type(contact) is not dict
        or not contact.keys() <= CONTACT_FIELDS
        or "email" not in contact
    ):
        return None
    texts = _plain_texts(data, EVENT_TEXTS)
    people = _plain_texts(contact, CONTACT_TEXTS)
    raw = data.get("occurred_at")
    if texts is None or people is None or type(raw) is not str:
        return None
    try:
        occurred_at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if occurred_at.tzinfo is None or occurred_at.date() < fields.EARLIEST:
        return None
    occurred_at = occurred_at.astimezone(UTC)
    if occurred_at.date() < fields.EARLIEST or occurred_at - now > CLOCK_SKEW:
        return None
    event_id, source, kind, team, agent, channel, stage = texts
    contact_id, email, name, locale, timezone = people
    email = email or ""
    if email:
        local, _, domain = email.rpartition("@")
        ascii_domain = _ascii_domain(domain) if EMAIL.match(email) and local.isascii() else None
        if ascii_domain is None:
            return None
        email = f"{local}@{ascii_domain}"
        if len(email) > fields.CONTACT_EMAIL.max_length:  # ASCII now, and NUL was refused with the other texts
            return None
    contact_attributes = contact.get("attributes")
    attributes = data.get("attributes")
    if contact_attributes not in (None, {}) or attributes not in (None, {}):  # names and values to check
        return None
    contact_in = ContactIn(
        contact_id,  # type: ignore[arg-type]
        email.lower(),
        name,
        locale,
        timezone,
        None if contact_attributes is None else {},
    )
    return EventIn(
        index,
        event_id,  # type: ignore[arg-type]
        source or "api",
        kind,  # type: ignore[arg-type]
        occurred_at,
        contact_in,
        team,
        agent,
        channel,
        stage,
        {},
    )


def parse_event(index: int, data: Any, now: datetime, segments: Iterable[str] = ()) -> EventIn | list[dict[str, str]]:
    """A validated event, or the list of field errors that say what is wrong with it.

    `segments` names the contact attributes kept as segments of the trends (their values must fit the rollups).
    """
    if type(data) is dict and (event := _plain_event(index, data, now)) is not None:
        return event
    return checked_event(index, data, now, segments)


def checked_event(index: int, data: Any, now: datetime, segments: Iterable[str] = ()) -> EventIn | list[dict[str, str]]:
    """parse_event field by field, without its shortcut for plain events: every problem named."""
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("(event)", "each event must be a JSON object")
        return errors.items
    for name in sorted(set(data) - EVENT_FIELDS):
        errors.add(name, f"{name} is not a known field")
    external_id = _text(data, "external_id", errors, fields.EVENT_ID, required=True)
    source = _text(data, "source", errors, fields.SOURCE) or "api"
    kind = _text(data, "type", errors, fields.TOUCHPOINT_TYPE, required=True)
    occurred_at = _occurred_at(data.get("occurred_at"), now, errors)
    contact = None
    raw_contact = data.get("contact")
    if raw_contact is None:
        errors.add("contact", "contact is required")
    elif not isinstance(raw_contact, dict):
        errors.add("contact", "contact must be an object with external_id and email")
    else:
        for name in sorted(set(raw_contact) - CONTACT_FIELDS):
            errors.add(f"contact.{name}", f"contact.{name} is not a known field")
        contact_id = _text(raw_contact, "external_id", errors, fields.CONTACT_ID, prefix="contact.", required=True)
        if "email" not in raw_contact:
            errors.add("contact.email", "contact.email is required (it may be empty when there is none)")
        email = _text(raw_contact, "email", errors, fields.CONTACT_EMAIL, prefix="contact.") or ""
        if email:
            email = _mailbox(email, errors)
        contact = ContactIn(
            external_id=contact_id or "",
            email=email.lower(),
            name=_text(raw_contact, "name", errors, fields.CONTACT_NAME, prefix="contact."),
            locale=_text(raw_contact, "locale", errors, fields.CONTACT_LOCALE, prefix="contact."),
            timezone=_text(raw_contact, "timezone", errors, fields.CONTACT_TIMEZONE, prefix="contact."),
            attributes=_attributes(raw_contact.get("attributes"), "contact.attributes", errors, segments),
        )
    team = _text(data, "team", errors, fields.TEAM)
    agent = _text(data, "agent", errors, fields.AGENT)
    channel = _text(data, "channel", errors, fields.CHANNEL)
    stage = _text(data, "stage", errors, fields.STAGE)
    attributes = _attributes(data.get("attributes"), "attributes", errors) or {}
    if errors.items:
        return errors.items
    assert external_id and kind and occurred_at and contact
    return EventIn(index, external_id, source, kind, occurred_at, contact, team, agent, channel, stage, attributes)


def policy(settings: Settings) -> rules.Policy:
    return rules.Policy(
        fatigue_days=settings.fatigue_days,
        quiet_hours=settings.quiet_hours,
        default_timezone=settings.timezone,
        priority_window=timedelta(minutes=settings.priority_window_minutes),
        sampling_override=settings.sampling_override,
    )


def message_id(invitation_id: int, domain: str, nonce: str | None = None) -> str:
    """A Message-ID fixed when the invitation is made, so a resend after a crash can be deduplicated; `nonce`, 12
    hex digits, is drawn here unless given (a batch draws them all at once: `nonces`)."""
    return f"<invitation-{invitation_id}.{nonce or secrets.token_hex(6)}@{domain}>"


def nonces(count: int) -> Iterator[str]:
    """`count` random 12-hex-digit parts of Message-IDs, from one draw of the system's randomness (one system call
    for a batch, not one an e-mail)."""
    drawn = secrets.token_hex(6 * count)
    return (drawn[start : start + 12] for start in range(0, 12 * count, 12))


def mail_domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "pulse.localhost"


async def ingest(
    items: Sequence[Any], catalog: Catalog, settings: Settings, now: datetime | None = None
) -> list[Outcome]:
    """Store a batch of events and decide each one; everything valid is written in one transaction."""
    now = now or datetime.now(UTC)
    outcomes: list[Outcome] = []
    events: list[EventIn] = []
    for index, item in enumerate(items):
        if index % 100 == 99:
            # a moment for the other batches: one holding the database resumes at once, not after all of ours
            await asyncio.sleep(0)
        parsed = parse_event(index, item, now, settings.segment_attributes)
        if isinstance(parsed, EventIn):
            events.append(parsed)
            outcomes.append(Outcome(index, parsed.external_id, "pending"))
        else:
            external_id = item.get("external_id") if isinstance(item, dict) else None
            outcomes.append(Outcome(index, external_id, "invalid", errors=parsed))
    if events:
        # erased people (pulse/privacy.py) are not imported again: their events are skipped, nothing is stored
        erased = await privacy.suppressed(
            settings.secret_key, {e.contact.email for e in events}, {e.contact.external_id for e in events}
        )
        if erased:
            for e in events:
                if e.contact.email in erased or e.contact.external_id in erased:
                    outcomes[e.index].status, outcomes[e.index].reason = "skipped", privacy.ERASED
            events = [e for e in events if outcomes[e.index].status == "pending"]
    if events:
        reader = db.loop_reader()
        if reader is not None:
            await _store_in_line(db.thread_client(), reader, events, outcomes, catalog, settings, now)
        else:
            async with in_transaction():
                effects = await _store(events, outcomes, catalog, settings, now)
                if effects is not None:
                    await db.run_sqlite_writes(effects.statements)
    return outcomes


# How the batches of this process were decided on SQLite: "ahead" (while the batch before wrote, and written as
# decided), "again" (decided ahead, then again in its turn: something else was written in between), "in turn"
DECIDED: collections.Counter[str] = collections.Counter()


class _Turn:
    """A batch's place in the line for SQLite's one writer (see _store_in_line)."""

    __slots__ = ("effects", "ended", "generation", "over", "ready", "result")

    def __init__(self) -> None:
        self.effects: _Effects | None = None  # what it writes, once decided and holding the writer's lock
        self.ready = asyncio.Event()  # effects published, or the turn ended without
        self.result: tuple[int, int] | None = None  # after its COMMIT, when it wrote exactly its published effects
        self.ended = False
        self.over = asyncio.Event()  # set when it ends
        self.generation = 0  # of the writer process it was sent to (pulse.sqlite_writer); 0: Tortoise's connection


async def _store_in_line(
    client: Any,
    reader: Any,
    events: list[EventIn],
    outcomes: list[Outcome],
    catalog: Catalog,
    settings: Settings,
    now: datetime,
) -> None:
    """SQLite: store a batch, deciding it while the batch before it writes.

    One batch at a time holds the writer's transaction. Holding it through its own reads and decisions, a batch
    left the other core idle while SQLite wrote the batch before it (bench/README.md, "Seventh pass"). Here a
    batch that arrives while another writes reads on the event loop's connection (the last committed state, which
    is then either before or after that batch) and lays what that batch writes over it: its touchpoints, its
    contacts as it leaves them, its teams, the ids it takes and the invitations it schedules or supersedes. It
    decides from that, then waits for its turn. Its writes run only if nothing else was written since that batch:
    in the same step as the writes, SQLite's own counters say whether this connection changed anything else
    (`total_changes`) and whether any other connection committed (`PRAGMA data_version`). Otherwise, and whenever
    the batch before it did not write what it announced, the batch is decided again in its transaction, as
    without the line. What is stored and answered is the same either way.

    In a long-running process the writes decided ahead run in a child process (pulse.sqlite_writer), which makes
    the same check with its own connection's counters (_ahead_in_process)."""
    turn = _Turn()
    previous: _Turn | None = getattr(client, "_pulse_ingest_turn", None)
    client._pulse_ingest_turn = turn
    try:

        async def decide(over: _Effects) -> _Effects | None:
            return await _decide_ahead(reader, over, events, outcomes, catalog, settings, now)

        writer = db.writer_process()
        if writer is not None:
            result, tried = await _ahead_in_process(writer, previous, turn, decide)
        else:
            result, tried = await _ahead_in_connection(previous, turn, decide)
        DECIDED["ahead" if result is not None else "again" if tried else "in turn"] += 1
        if result is None:
            async with in_transaction():
                if tried:
                    _restart(events, outcomes)
                effects = await _store(events, outcomes, catalog, settings, now)
                if effects is None:
                    return
                if not turn.ready.is_set():
                    turn.effects = effects
                    turn.ready.set()
                result = await db.run_sqlite_writes(effects.statements)
        if turn.effects is not None:
            turn.result = result
    finally:
        turn.ended = True
        turn.over.set()
        turn.ready.set()
    await asyncio.sleep(0)  # the next batch takes its turn before this one's 202 is written


async def _ahead_in_connection(
    previous: _Turn | None, turn: _Turn, decide: _Decide
) -> tuple[tuple[int, int] | None, bool]:
    """Decided while the batch before writes through Tortoise's connection, and written there: (what
    db.run_sqlite_transaction returns, whether it was decided ahead)."""
    ahead, tried = None, False
    if previous is not None and not previous.ended:
        await previous.ready.wait()
        if previous.effects is not None and not previous.generation:  # counters of this connection, not a child's
            tried = True
            ahead = await decide(previous.effects)
    if ahead is None or previous is None:
        return None, tried

    def published() -> bool:
        # under the writer's lock: the batch before has ended, and nobody can commit until this one has
        turn.effects = ahead if previous.result is not None else None
        turn.ready.set()
        return previous.result is not None

    result = await db.run_sqlite_transaction(ahead.statements, published, lambda: previous.result)
    if result is None:
        turn.effects = None  # what it announced is not what it writes now: the next decides again
    return result, tried


async def _ahead_in_process(
    writer: Any, previous: _Turn | None, turn: _Turn, decide: _Decide
) -> tuple[tuple[int, int] | None, bool]:
    """Decided ahead and written by the writer process: (its counters after the COMMIT or None when it did not
    write, whether it was decided ahead).

    Chained: while the batch before is with the same child, this one is decided over that batch's effects and
    sent at once, behind it; the child writes it only if that batch was written and nothing else committed since.
    Otherwise, once the batch before has ended, the child's counters are read first, the batch is decided from the
    last committed state, and the child writes it only if those counters still hold. Either way it announces its
    effects only after the batch before has ended: the next batch's read must then see all before this one."""
    generation = writer.generation
    if previous is not None and not previous.ended:
        await previous.ready.wait()
    # a write transaction of this process waits for the child (WriterProcess.hold): it commits before this batch,
    # which then starts a chain from the state it leaves
    chained = (
        not writer.held and previous is not None and previous.effects is not None and previous.generation == generation
    )
    if chained:
        assert previous is not None and previous.effects is not None
        ahead = await decide(previous.effects)
        if ahead is None:
            return None, True
        turn.generation = generation
        sent = writer.write(ahead.statements, None)
        await previous.over.wait()
        turn.effects = ahead if previous.result is not None else None
    else:
        if previous is not None:
            await previous.over.wait()
        await writer.free()
        expect = await writer.state()
        if expect is None:
            return None, False
        ahead = await decide(_NOTHING)
        if ahead is None:
            return None, True
        turn.generation = generation
        sent = writer.write(ahead.statements, expect)
        turn.effects = ahead
    turn.ready.set()
    result = await sent
    if result is None:
        turn.effects = None  # what it announced is not what it writes now: the next decides again
    return result, True


def _restart(events: list[EventIn], outcomes: list[Outcome]) -> None:
    for event in events:
        outcomes[event.index] = Outcome(event.index, event.external_id, "pending")


class _NotAhead(Exception):
    """The batch needs the writer's transaction to be decided (it names a team not stored yet)."""


async def _decide_ahead(
    reader: Any,
    previous: _Effects,
    events: list[EventIn],
    outcomes: list[Outcome],
    catalog: Catalog,
    settings: Settings,
    now: datetime,
) -> _Effects | None:
    """Decide a batch outside the writer's transaction, from the last committed state with `previous` laid over
    it; None if it cannot be (the read could not run at once, or a team must be created)."""
    horizon = now - timedelta(days=_longest_fatigue(catalog, settings))
    reads = _Prefetched.ahead(reader, previous, events, horizon)
    if reads is None:
        return None
    try:
        return await _store(events, outcomes, catalog, settings, now, reads=reads)
    except _NotAhead:
        return None


def _longest_fatigue(catalog: Catalog, settings: Settings) -> int:
    return max([policy(settings).fatigue_days] + [s.trigger.fatigue_days or 0 for s in catalog if s.trigger])


@dataclass(slots=True)
class _Effects:
    """What a batch writes on SQLite: its statements, and what a batch decided after it must lay over the state
    it reads (_Prefetched.ahead)."""

    statements: list[tuple[str, list]]
    stored: set[tuple[str, str]]
    people: dict[str, _Person]
    teams: dict[str, int]
    tops: dict[str, int]
    scheduled: list[tuple]  # (invitation id, contact id, survey id, "scheduled", send_at) as history rows
    superseded: set[int]


# what a batch decided from the last committed state alone lays over it
_NOTHING = _Effects([], set(), {}, {}, {}, [], set())
# _decide_ahead for the batch in line, over what a batch before it writes (_store_in_line)
_Decide = Callable[[_Effects], Awaitable[_Effects | None]]


@dataclass(slots=True)
class _Person:
    """A contact as ingestion sees it: plain data, cheaper than a model object in a 1,000-event batch."""

    id: int | None
    external_id: str
    email: str = ""
    name: str = ""
    locale: str | None = None
    timezone: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    first_purchase_at: datetime | None = None
    opted_out: bool = False
    bounced_at: datetime | None = None
    changed: bool = False


CONTACT_COLUMNS = ("email", "name", "locale", "timezone", "attributes", "first_purchase_at", "bounced_at", "updated_at")


async def _store(
    events: list[EventIn],
    outcomes: list[Outcome],
    catalog: Catalog,
    settings: Settings,
    now: datetime,
    reads: _Reads | None = None,
) -> _Effects | None:
    """Decide the batch and write it: on PostgreSQL statement by statement; on SQLite the writes are gathered and
    returned as _Effects, for the caller to run and commit (db.run_sqlite_writes). With `reads` (SQLite, decided
    ahead: _decide_ahead) nothing is read from or written to the database here."""
    # Concurrent batches (PostgreSQL) meet at the unique keys of touchpoint, contact and team. Every insert there
    # skips a key already stored (ON CONFLICT DO NOTHING, in key order), and the contacts this batch did not create
    # are locked, in key order, as they are read: a batch that names the same people waits for the other to commit,
    # then sees its contacts, touchpoints and invitations. SQLite runs one transaction at a time, so nothing can
    # change there between a read and a write of ours.
    concurrent = db.dialect() == "postgres"
    writes = _Writes(deferred=not concurrent)
    stamp = db.bound_time(now)  # `now` as stored, formatted once for the thousands of rows that carry it
    pol = policy(settings)
    horizon = now - timedelta(days=_longest_fatigue(catalog, settings))  # the earliest a new one could collide with
    ahead = reads is not None
    if reads is None:
        reads = _Reads() if concurrent else await _Prefetched.load(events, horizon)

    # 1. replays: (source, external_id) already stored, or twice in this batch
    fresh = await _unseen(events, outcomes, reads)
    if not fresh:
        return None

    # 2. contacts: upsert by external id, the last event of the batch carrying the newest data
    keys = sorted({e.contact.external_id for e in fresh})
    people = await reads.people(keys)
    created = await _create_people([k for k in keys if k not in people], fresh, stamp, writes, reads)
    if concurrent:
        inserted = await db.stored_ids("contact", [p.id for p in created.values()])
        created = {k: p for k, p in created.items() if p.id in inserted}
        # the others are known, or were created first by a concurrent batch: wait for it and read them again
        people = await reads.people(sorted(set(keys) - created.keys()), lock=True)
        fresh = await _unseen(fresh, outcomes, reads)  # what a batch we waited for stored is a replay now
        if not fresh:
            return None
    people.update(created)
    for event in fresh:
        if event.contact.external_id not in created:
            _apply_event(people[event.contact.external_id], event)
    await writes.update(
        "contact",
        CONTACT_COLUMNS,
        [(*_contact_values(p, stamp), p.id) for p in people.values() if p.changed],
    )
    new_ids = {p.id for p in created.values()}

    # 3. teams: a team an event names for the first time is created (an admin names it properly later)
    slugs = sorted({e.team for e in fresh if e.team})
    teams = await reads.teams(slugs)
    if missing := [slug for slug in slugs if slug not in teams]:
        if ahead:
            raise _NotAhead
        await Team.bulk_create([Team(slug=slug, name=slug) for slug in missing], ignore_conflicts=True)
        teams = await _Reads().teams(slugs)

    # 4. touchpoints: only the events whose row this batch inserted are decided here
    touchpoint_ids = dict(zip((e.index for e in fresh), await reads.ids("touchpoint", len(fresh)), strict=True))
    touchpoint_rows = sorted(
        (
            (
                touchpoint_ids[event.index],
                event.source,
                event.external_id,
                event.type,
                event.occurred_at,
                people[event.contact.external_id].id,
                teams[event.team] if event.team else None,
                event.agent,
                event.channel,
                event.stage,
                json.dumps(event.attributes) if event.attributes else "{}",
                stamp,
            )
            for event in fresh
        ),
        key=lambda row: (row[1], row[2]),
    )
    await writes.insert("touchpoint", TOUCHPOINT_COLUMNS, touchpoint_rows, unless_exists=("source", "external_id"))
    if concurrent:
        stored = await db.stored_ids("touchpoint", list(touchpoint_ids.values()))
        for event in fresh:
            if touchpoint_ids[event.index] not in stored:
                outcomes[event.index].status = "duplicate"  # another batch stored it since we looked
        fresh = [e for e in fresh if touchpoint_ids[e.index] in stored]

    # 5. history: earlier invitations of these people that a new one could collide with
    by_id = {p.id: p for p in people.values()}
    history: dict[int, list[rules.Prior]] = {pid: [] for pid in by_id}
    priorities = {s.id: s.trigger.priority if s.trigger else 0 for s in catalog}
    known = [pid for pid in by_id if pid not in new_ids]
    if known:
        for inv_id, contact_id, survey_id, status, send_at in await reads.history(known, horizon):
            history[contact_id].append(
                rules.Prior(inv_id, survey_id, status, db.as_datetime(send_at), priorities.get(survey_id, 0))
            )
    await _employee_history(people.values(), history, horizon, reads)

    # 6. decide, in event order, each decision seeing the ones before it
    decided: list[tuple[EventIn, _Person, int, rules.Decision]] = []
    decider = rules.Decider(catalog, pol, now)
    for event in fresh:
        person = people[event.contact.external_id]
        decision = decider.decide(
            rules.Event(
                event.type,
                event.occurred_at,
                person.external_id,
                f"{event.source}:{event.external_id}",
                person.email,
                person.timezone,
                person.opted_out,
                person.bounced_at is not None,
            ),
            history[person.id],
        )
        decided.append((event, person, touchpoint_ids[event.index], decision))
        if decision.invite:
            assert decision.survey and decision.survey.trigger and decision.send_at
            prior = history[person.id]
            if decision.supersedes is not None:
                prior[:] = [p for p in prior if p.invitation_id != decision.supersedes]
            prior.append(
                rules.Prior(None, decision.survey.id, "scheduled", decision.send_at, decision.survey.trigger.priority)
            )

    # 7. invitations (kept for skips too: the reason is part of the contact's timeline) and their e-mails
    ids = iter(await reads.ids("invitation", sum(1 for *_, d in decided if d.survey)))
    random_parts = nonces(sum(1 for *_, d in decided if d.invite))
    domain = mail_domain(settings.mail_from)
    invitation_rows, message_rows, superseded, scheduled = [], [], [], []
    # most people of a batch share a few locales and most invitations a few send times: each worked out once
    locales: dict[str | None, str] = {}
    send_times: dict[tuple, datetime | str] = {}
    for event, person, tp_id, decision in decided:
        outcome = outcomes[event.index]
        outcome.survey = decision.survey.id if decision.survey else None
        if decision.survey is None:
            outcome.status, outcome.reason = "skipped", decision.reason
            continue
        invitation_id = next(ids)
        locale = locales.get(person.locale)
        if locale is None:
            locale = locales[person.locale] = i18n.supported(person.locale) or settings.default_locale
        send_at = None
        if decision.send_at is not None:
            key = (decision.send_at, decision.send_at.utcoffset())  # equal instants in other offsets print apart
            send_at = send_times.get(key)
            if send_at is None:
                send_at = send_times[key] = db.bound_time(decision.send_at)
        invitation_rows.append(
            (
                invitation_id,
                decision.survey.id,
                person.id,
                tp_id,
                locale,
                "scheduled" if decision.invite else "skipped",
                decision.reason,
                send_at,
                stamp,
            )
        )
        outcome.invitation_id = invitation_id
        if not decision.invite:
            outcome.status, outcome.reason = "skipped", decision.reason
            continue
        outcome.status, outcome.send_at = "invited", decision.send_at
        if decision.supersedes is not None:
            superseded.append(decision.supersedes)
        scheduled.append((invitation_id, person.id, decision.survey.id, "scheduled", decision.send_at))
        message_rows.append(
            (
                "invitation",
                invitation_id,
                person.email,
                locale,
                "{}",
                "pending",
                0,
                send_at,
                message_id(invitation_id, domain, next(random_parts)),
                stamp,
            )
        )
    await writes.insert("invitation", INVITATION_COLUMNS, invitation_rows)
    await writes.insert("outbox_message", OUTBOX_COLUMNS, message_rows)
    if superseded and writes.deferred:
        # by primary key: the unary + keeps SQLite off the (status, send_at) index, every scheduled invitation of
        # everybody
        writes.statements.append(
            (
                "UPDATE invitation SET status = 'skipped', skip_reason = ?"
                f" WHERE id IN ({db.marks(len(superseded))}) AND +status = 'scheduled'",
                [rules.SUPERSEDED, *superseded],
            )
        )
        writes.statements.append(
            (
                # by the invitation_id index (migration 0017): the unary + keeps SQLite off the status index, which
                # would walk every pending e-mail of everybody
                "UPDATE outbox_message SET status = 'cancelled'"
                f" WHERE invitation_id IN ({db.marks(len(superseded))}) AND +status = 'pending'",
                list(superseded),
            )
        )
    elif superseded:
        await Invitation.filter(id__in=superseded, status="scheduled").update(
            status="skipped", skip_reason=rules.SUPERSEDED
        )
        await OutboxMessage.filter(invitation_id__in=superseded, status="pending").update(status="cancelled")
    if not writes.deferred:
        return None
    assert isinstance(reads, _Prefetched)
    return _Effects(
        writes.statements,
        {(e.source, e.external_id) for e in fresh},
        people,
        teams,
        dict(reads.tops),
        scheduled,
        set(superseded),
    )


class _Writes:
    """The batch's inserts and updates. PostgreSQL runs each at once: concurrent batches meet at the unique keys
    as they are written. SQLite has one writer, so nothing can come between our reads and writes: they are
    gathered and returned in _Effects, run at the end in one hop to aiosqlite's thread (db.run_sqlite_writes)."""

    def __init__(self, *, deferred: bool) -> None:
        self.deferred = deferred
        self.statements: list[tuple[str, list[tuple]]] = []

    async def insert(
        self, table: str, columns: tuple[str, ...], rows: list[tuple], *, unless_exists: tuple[str, ...] = ()
    ) -> None:
        if not self.deferred:
            await db.insert_many(table, columns, rows, unless_exists=unless_exists)
        elif rows:
            self.statements += db.insert_statements(table, columns, rows, unless_exists)

    async def update(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """UPDATE rows by id; each row is (value for each column..., id)."""
        if not self.deferred:
            await db.update_many(table, columns, rows)
        elif rows:
            self.statements += db.update_statements(table, columns, rows)


TOUCHPOINT_COLUMNS = (
    "id",
    "source",
    "external_id",
    "type",
    "occurred_at",
    "contact_id",
    "team_id",
    "agent",
    "channel",
    "stage",
    "attributes",
    "received_at",
)
INVITATION_COLUMNS = (
    "id",
    "survey_id",
    "contact_id",
    "touchpoint_id",
    "locale",
    "status",
    "skip_reason",
    "send_at",
    "created_at",
)
OUTBOX_COLUMNS = (
    "kind",
    "invitation_id",
    "to_email",
    "locale",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "message_id",
    "created_at",
)


async def _unseen(events: list[EventIn], outcomes: list[Outcome], reads: _Reads) -> list[EventIn]:
    """The events not stored yet and not repeated earlier in the batch; the others are marked duplicates."""
    stored = await reads.stored(_by_source(events))
    unseen: list[EventIn] = []
    for event in events:
        key = (event.source, event.external_id)
        if key in stored:
            outcomes[event.index].status = "duplicate"
            continue
        stored.add(key)
        unseen.append(event)
    return unseen


def _by_source(events: list[EventIn]) -> dict[str, set[str]]:
    """The events' external ids, by source (a replay is looked up by both)."""
    by_source: dict[str, set[str]] = {}
    for event in events:
        by_source.setdefault(event.source, set()).add(event.external_id)
    return by_source


def _stored_sql(count: int, *, packed: bool = False) -> str:
    # the source first: a lookup by external_id alone cannot use the unique index and scans the table
    columns = db.packed("source, external_id") if packed else "source, external_id"
    return f"SELECT {columns} FROM touchpoint WHERE source = ? AND external_id IN ({db.marks(count)})"


def _people_sql(count: int, *, lock: bool = False, packed: bool = False) -> str:
    columns = "id, external_id, email, name, locale, timezone, attributes, first_purchase_at, opted_out_at, bounced_at"
    return (
        f"SELECT {db.packed(columns) if packed else columns} FROM contact WHERE external_id IN ({db.marks(count)})"
        + (" ORDER BY external_id FOR NO KEY UPDATE" if lock else "")
    )


def _person(row: tuple) -> _Person:
    return _Person(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        db.as_json(row[6]) or {},
        db.as_datetime(row[7]),
        row[8] is not None,
        db.as_datetime(row[9]),
    )


def _teams_sql(count: int, *, packed: bool = False) -> str:
    return f"SELECT {db.packed('slug, id') if packed else 'slug, id'} FROM team WHERE slug IN ({db.marks(count)})"


def _history_sql(count: int, dialect: str, *, packed: bool = False) -> str:
    """Recent invitations of `count` contacts that a new one could collide with (parameters: the horizon, the
    active statuses, the contact ids)."""
    # SQLite, without statistics, would read every recent invitation through the (status, send_at) index; a unary
    # + on status keeps it to the (contact_id, send_at) one. PostgreSQL plans by its statistics.
    status = "+status" if dialect == "sqlite" else "status"
    columns = "id, contact_id, survey_id, status, send_at"
    return (
        f"SELECT {db.packed(columns) if packed else columns} FROM invitation WHERE send_at >= ? AND {status} IN "
        f"({db.marks(len(rules.ACTIVE_STATUSES))}) AND contact_id IN ({db.marks(count)})"
    )


def _employees_sql(count: int) -> str:
    """Recent pulses of employees with these `count` addresses (parameters: the horizon, the active statuses, the
    addresses)."""
    return (
        "SELECT i.id, i.survey_id, i.status, i.send_at, e.email FROM invitation i"
        " JOIN employee e ON e.id = i.employee_id"
        f" WHERE i.send_at >= ? AND i.status IN ({db.marks(len(rules.ACTIVE_STATUSES))})"
        f" AND e.email IN ({db.marks(count)})"
    )


class _Reads:
    """The lookups of a batch, each a query in the batch's transaction."""

    async def stored(self, by_source: dict[str, set[str]]) -> set[tuple[str, str]]:
        """(source, external_id) of these events already stored."""
        stored: set[tuple[str, str]] = set()
        for source, external_ids in by_source.items():
            stored.update(await db.fetch(_stored_sql(len(external_ids)), [source, *external_ids]))
        return stored

    async def people(self, keys: list[str], *, lock: bool = False) -> dict[str, _Person]:
        """The stored contacts with these external ids; `lock` (PostgreSQL) holds them, in key order, until commit."""
        if not keys:
            return {}
        return {row[1]: _person(row) for row in await db.fetch(_people_sql(len(keys), lock=lock), keys)}

    async def teams(self, slugs: list[str]) -> dict[str, int]:
        """The ids of the teams with these slugs."""
        return dict(await db.fetch(_teams_sql(len(slugs)), slugs)) if slugs else {}

    async def ids(self, table: str, count: int) -> list[int]:
        return await db.allocate_ids(table, count)

    async def history(self, known: list[int], horizon: datetime) -> list[tuple]:
        statuses = sorted(rules.ACTIVE_STATUSES)
        return await db.fetch(_history_sql(len(known), db.dialect()), [horizon, *statuses, *known])

    async def employees(self, emails: list[str], horizon: datetime) -> list[tuple]:
        if not await db.fetch("SELECT 1 FROM employee LIMIT 1"):
            return []
        return await db.fetch(_employees_sql(len(emails)), [horizon, *sorted(rules.ACTIVE_STATUSES), *emails])


class _Prefetched(_Reads):
    """SQLite: every lookup of the batch made at once, in one call in the database's thread at the start of its
    transaction, for all the batch's events (a superset of what each step then asks for: an event found to be a
    replay still had its contact read). Each lookup of a step took a hop to that thread and back, and a hop's
    return waited for whatever the event loop was running (the next batch's parsing): eight hops held the one
    writer's transaction open that much longer. Nothing else writes while the transaction is open, so what was
    read at its start holds until its end; the ids after each table's largest are free for the same reason."""

    def __init__(
        self,
        stored: set[tuple[str, str]],
        people: dict[str, _Person],
        teams: dict[str, int],
        tops: dict[str, int],
        history: list[tuple],
        employees: list[tuple],
    ) -> None:
        self._stored, self._people, self._teams, self._tops = stored, people, teams, tops
        self._history, self._employees = history, employees

    @classmethod
    async def load(cls, events: list[EventIn], horizon: datetime) -> _Prefetched:
        from pulse.sqlite_engine import call_in_thread

        def read(raw: sqlite3.Connection) -> tuple:
            return _prefetch(raw, events, horizon)

        return cls._from_rows(await call_in_thread(connections.get("default"), read))

    @classmethod
    def _from_rows(cls, read: tuple) -> _Prefetched:
        """From what `_prefetch` returns."""
        stored, people, teams, tops, history, employees = read
        return cls(
            {(source, external_id) for source, external_id in stored},
            {row[1]: _person(row) for row in people},
            dict(teams),
            {table: top or 0 for table, top in tops.items()},
            history,
            employees,
        )

    @classmethod
    def ahead(cls, reader: Any, previous: _Effects, events: list[EventIn], horizon: datetime) -> _Prefetched | None:
        """The lookups of a batch decided while `previous` writes (pulse.touchpoints._store_in_line): read on the
        event loop's connection, in one read transaction, then `previous` laid over them. That read sees the last
        committed state, before or after `previous`; laid over either, the result is the same. None if the read
        could not run at once."""
        keys = {e.contact.external_id for e in events}
        mine = {key: previous.people[key] for key in keys if key in previous.people}
        emails = {p.email for p in mine.values()}
        read = reader.snapshot(lambda raw: _prefetch(raw, events, horizon, emails))
        if read is None:
            return None
        found = cls._from_rows(read)
        for key, person in mine.items():
            found._people[key] = dataclasses.replace(person, changed=False)
        gone = previous.superseded
        seen = {row[0] for row in found._history}
        ids = {p.id for p in found._people.values()}
        since = db.bound_time(horizon)  # compared as SQLite compares the stored text
        found._history = [row for row in found._history if row[0] not in gone] + [
            row
            for row in previous.scheduled
            if row[1] in ids and row[0] not in seen and row[0] not in gone and db.bound_time(row[4]) >= since
        ]
        found._stored |= previous.stored
        found._teams.update(previous.teams)
        for table, top in previous.tops.items():
            found._tops[table] = max(found._tops[table], top)
        return found

    @property
    def tops(self) -> dict[str, int]:
        """The largest id of each table, counting the ones this batch has taken."""
        return self._tops

    async def stored(self, by_source: dict[str, set[str]]) -> set[tuple[str, str]]:
        return {(source, e) for source, ids in by_source.items() for e in ids if (source, e) in self._stored}

    async def people(self, keys: list[str], *, lock: bool = False) -> dict[str, _Person]:
        return {key: self._people[key] for key in keys if key in self._people}

    async def teams(self, slugs: list[str]) -> dict[str, int]:
        return {slug: self._teams[slug] for slug in slugs if slug in self._teams}

    async def ids(self, table: str, count: int) -> list[int]:
        top = self._tops[table]
        self._tops[table] = top + max(count, 0)
        return list(range(top + 1, top + 1 + max(count, 0)))

    async def history(self, known: list[int], horizon: datetime) -> list[tuple]:
        wanted = set(known)
        return [row for row in self._history if row[1] in wanted]

    async def employees(self, emails: list[str], horizon: datetime) -> list[tuple]:
        wanted = set(emails)
        return [row for row in self._employees if row[4] in wanted]


def _prefetch(raw: sqlite3.Connection, events: list[EventIn], horizon: datetime, emails: Iterable[str] = ()) -> tuple:
    """Every lookup of a batch (_Prefetched), on a raw connection: the stored touchpoints among its events, its
    people, its teams, the largest ids, the recent invitations of its people and, when there are employees, those
    of the employees sharing their addresses (and `emails`)."""
    # only SQL and JSON in the database's thread: Python there waits for the event loop's turn at the GIL
    by_source = _by_source(events)
    keys = sorted({e.contact.external_id for e in events})
    slugs = sorted({e.team for e in events if e.team})
    statuses = sorted(rules.ACTIVE_STATUSES)
    stored = [
        row
        for source, external_ids in by_source.items()
        for row in db.unpacked(raw, _stored_sql(len(external_ids), packed=True), [source, *external_ids])
    ]
    people = db.unpacked(raw, _people_sql(len(keys), packed=True), keys)
    teams = db.unpacked(raw, _teams_sql(len(slugs), packed=True), slugs) if slugs else []
    tables = ("contact", "touchpoint", "invitation")
    largest = ", ".join(f"({db.TOP_ID.format(table=table)})" for table in tables)
    *tops, employed = raw.execute(f"SELECT {largest}, EXISTS (SELECT 1 FROM employee)", tables).fetchone()
    found = [row[0] for row in people]
    history = []
    if found:
        history = db.unpacked(raw, _history_sql(len(found), "sqlite", packed=True), [horizon, *statuses, *found])
    employees = []
    if employed:
        addresses = sorted(({e.contact.email for e in events} | {row[2] for row in people} | set(emails)) - {"", None})
        if addresses:
            employees = [
                tuple(r) for r in raw.execute(_employees_sql(len(addresses)), [horizon, *statuses, *addresses])
            ]
    return stored, people, teams, dict(zip(tables, tops, strict=True)), history, employees


async def _create_people(
    keys: list[str], events: list[EventIn], now: datetime | str, writes: _Writes, reads: _Reads
) -> dict[str, _Person]:
    """Insert the contacts these events name for the first time, unless a concurrent batch inserts them first."""
    people = {key: _Person(None, key) for key in keys}
    for event in events:
        if (person := people.get(event.contact.external_id)) is not None:
            _apply_event(person, event)
    for person, new_id in zip(people.values(), await reads.ids("contact", len(people)), strict=True):
        person.id, person.changed = new_id, False
    await writes.insert(
        "contact",
        ("id", "external_id", "opted_out_at", "created_at", *CONTACT_COLUMNS),
        [(p.id, p.external_id, None, now, *_contact_values(p, now)) for p in people.values()],
        unless_exists=("external_id",),
    )
    return people


def _contact_values(person: _Person, now: datetime | str) -> tuple:
    """The person's CONTACT_COLUMNS, as stored."""
    return (
        person.email,
        person.name,
        person.locale,
        person.timezone,
        json.dumps(person.attributes) if person.attributes else "{}",
        person.first_purchase_at,
        person.bounced_at,
        now,
    )


async def _employee_history(
    people: Iterable[_Person], history: dict[int, list[rules.Prior]], horizon: datetime, reads: _Reads
) -> None:
    """A customer who is also an employee (same address) counts their employee pulses against fatigue."""
    by_email = {p.email: p.id for p in people if p.email}
    if not by_email:
        return
    for inv_id, survey_id, status, send_at, email in await reads.employees(list(by_email), horizon):
        history[by_email[email]].append(rules.Prior(inv_id, survey_id, status, db.as_datetime(send_at), 0))


def _apply_event(person: _Person, event: EventIn) -> None:
    """What an event tells about its person: their contact data, and their first purchase."""
    _apply_contact(person, event.contact)
    if event.type == "purchase" and (person.first_purchase_at is None or event.occurred_at < person.first_purchase_at):
        person.first_purchase_at, person.changed = event.occurred_at, True


def _apply_contact(person: _Person, data: ContactIn) -> None:
    """Copy what the event says about the person, noting whether anything changed."""
    for name in ("email", "name", "locale", "timezone"):
        value = getattr(data, name)
        if value is None or getattr(person, name) == value:
            continue
        if name == "email" and person.bounced_at is not None:
            person.bounced_at = None  # a new address gets a new chance
        setattr(person, name, value)
        person.changed = True
    if data.attributes is not None and {**person.attributes, **data.attributes} != person.attributes:
        person.attributes = {**person.attributes, **data.attributes}
        person.changed = True


CSV_CONTACT = {
    "contact_external_id": "external_id",
    "contact_email": "email",
    "contact_name": "name",
    "contact_locale": "locale",
    "contact_timezone": "timezone",
}


def events_from_csv(text: str) -> list[dict[str, Any]]:
    """CSV rows as event objects: contact_* columns make the contact, attributes_X and contact_attributes_X
    columns make attributes. Empty cells are absent values."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise ValueError("the CSV has no header row")
    events = []
    for row in reader:
        event: dict[str, Any] = {}
        contact: dict[str, Any] = {}
        for column, value in row.items():
            if column is None:
                raise ValueError(f"row {reader.line_num} has more cells than the header has columns")
            value = (value or "").strip()
            column = column.strip()
            if column in CSV_CONTACT:
                if value or column == "contact_email":
                    contact[CSV_CONTACT[column]] = value
            elif column.startswith("contact_attributes_"):
                if value:
                    contact.setdefault("attributes", {})[column.removeprefix("contact_attributes_")] = value
            elif column.startswith("attributes_"):
                if value:
                    event.setdefault("attributes", {})[column.removeprefix("attributes_")] = value
            elif value:
                event[column] = value
        event["contact"] = contact
        events.append(event)
    return events
