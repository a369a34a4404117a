"""Ingest touchpoint events: validate, store idempotently, apply the rules, schedule invitations.

A batch is processed set-wise (a handful of queries per batch, not per event) in one transaction, so a
1,000-event batch costs about as much as a few single inserts.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from tortoise.transactions import in_transaction

from pulse import db, i18n, rules
from pulse.catalog import Catalog
from pulse.models import Contact, Invitation, OutboxMessage, Team, Touchpoint
from pulse.settings import Settings

MAX_BATCH = 1000
CLOCK_SKEW = timedelta(minutes=5)
EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+$")
CODE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
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


@dataclass(frozen=True)
class ContactIn:
    external_id: str
    email: str
    name: str | None
    locale: str | None
    timezone: str | None
    attributes: dict[str, Any] | None


@dataclass(frozen=True)
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


@dataclass
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


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, name: str, message: str) -> None:
        self.items.append({"field": name, "message": message})


def _text(
    data: dict,
    name: str,
    errors: _Errors,
    *,
    prefix: str = "",
    required: bool = False,
    max_length: int = 200,
    pattern: re.Pattern | None = None,
    hint: str = "",
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
    if len(value) > max_length:
        errors.add(label, f"{label} must be at most {max_length} characters")
        return None
    if pattern and not pattern.match(value):
        errors.add(label, f"{label} {hint}")
        return None
    return value


def _attributes(value: Any, label: str, errors: _Errors) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add(label, f"{label} must be an object of names to plain values")
        return None
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool) and item is not None:
            errors.add(f"{label}.{key}", f"{label}.{key} must be a string, number, boolean or null")
    return value


def parse_event(index: int, data: Any, now: datetime) -> EventIn | list[dict[str, str]]:
    """A validated event, or the list of field errors that say what is wrong with it."""
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("(event)", "each event must be a JSON object")
        return errors.items
    for name in sorted(set(data) - EVENT_FIELDS):
        errors.add(name, f"{name} is not a known field")
    external_id = _text(data, "external_id", errors, required=True)
    source = (
        _text(
            data,
            "source",
            errors,
            max_length=64,
            pattern=SLUG,
            hint="must be letters, digits, dots, dashes or underscores",
        )
        or "api"
    )
    kind = _text(
        data,
        "type",
        errors,
        required=True,
        max_length=64,
        pattern=CODE,
        hint="must be a lowercase code such as support_ticket_closed",
    )
    occurred_at = None
    raw_time = data.get("occurred_at")
    if raw_time in (None, ""):
        errors.add("occurred_at", "occurred_at is required")
    elif not isinstance(raw_time, str):
        errors.add("occurred_at", "occurred_at must be an ISO 8601 string such as 2026-03-01T10:00:00+01:00")
    else:
        try:
            parsed = datetime.fromisoformat(raw_time)
        except ValueError:
            errors.add("occurred_at", "occurred_at must be an ISO 8601 date-time such as 2026-03-01T10:00:00+01:00")
        else:
            if parsed.tzinfo is None:
                errors.add("occurred_at", "occurred_at must include a UTC offset, such as +01:00 or Z")
            elif parsed - now > CLOCK_SKEW:
                errors.add("occurred_at", "occurred_at is in the future")
            else:
                occurred_at = parsed.astimezone(UTC)
    contact = None
    raw_contact = data.get("contact")
    if raw_contact is None:
        errors.add("contact", "contact is required")
    elif not isinstance(raw_contact, dict):
        errors.add("contact", "contact must be an object with external_id and email")
    else:
        for name in sorted(set(raw_contact) - CONTACT_FIELDS):
            errors.add(f"contact.{name}", f"contact.{name} is not a known field")
        contact_id = _text(raw_contact, "external_id", errors, prefix="contact.", required=True)
        if "email" not in raw_contact:
            errors.add("contact.email", "contact.email is required (it may be empty when there is none)")
        email = _text(raw_contact, "email", errors, prefix="contact.", max_length=254) or ""
        if email and not EMAIL.match(parseaddr(email)[1] or "-"):
            errors.add("contact.email", "contact.email is not an e-mail address")
        contact = ContactIn(
            external_id=contact_id or "",
            email=(parseaddr(email)[1] or email).lower(),
            name=_text(raw_contact, "name", errors, prefix="contact."),
            locale=_text(
                raw_contact,
                "locale",
                errors,
                prefix="contact.",
                max_length=16,
                pattern=LOCALE_TAG,
                hint="must be a language tag such as pl or it-IT",
            ),
            timezone=_text(raw_contact, "timezone", errors, prefix="contact.", max_length=64),
            attributes=_attributes(raw_contact.get("attributes"), "contact.attributes", errors),
        )
    team = _text(
        data,
        "team",
        errors,
        max_length=64,
        pattern=SLUG,
        hint="must be a team slug: letters, digits, dots, dashes or underscores",
    )
    agent = _text(data, "agent", errors)
    channel = _text(data, "channel", errors, max_length=64)
    stage = _text(data, "stage", errors, max_length=64)
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


def message_id(invitation_id: int, mail_from: str) -> str:
    """A Message-ID fixed when the invitation is made, so a resend after a crash can be deduplicated."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "pulse.localhost"
    return f"<invitation-{invitation_id}.{secrets.token_hex(6)}@{domain}>"


async def ingest(
    items: Sequence[Any], catalog: Catalog, settings: Settings, now: datetime | None = None
) -> list[Outcome]:
    """Store a batch of events and decide each one; everything valid is written in one transaction."""
    now = now or datetime.now(UTC)
    outcomes: list[Outcome] = []
    events: list[EventIn] = []
    for index, item in enumerate(items):
        parsed = parse_event(index, item, now)
        if isinstance(parsed, EventIn):
            events.append(parsed)
            outcomes.append(Outcome(index, parsed.external_id, "pending"))
        else:
            external_id = item.get("external_id") if isinstance(item, dict) else None
            outcomes.append(Outcome(index, external_id, "invalid", errors=parsed))
    if events:
        async with in_transaction():
            await _store(events, outcomes, catalog, settings, now)
    return outcomes


async def _store(
    events: list[EventIn], outcomes: list[Outcome], catalog: Catalog, settings: Settings, now: datetime
) -> None:
    # 1. replays: (source, external_id) already stored, or twice in this batch
    stored = set(
        await Touchpoint.filter(external_id__in={e.external_id for e in events}).values_list("source", "external_id")
    )
    fresh: list[EventIn] = []
    for event in events:
        key = (event.source, event.external_id)
        if key in stored:
            outcomes[event.index].status = "duplicate"
            continue
        stored.add(key)
        fresh.append(event)
    if not fresh:
        return

    # 2. contacts: upsert by external id, the last event of the batch carrying the newest data
    contacts = {c.external_id: c for c in await Contact.filter(external_id__in={e.contact.external_id for e in fresh})}
    new_contacts: list[Contact] = []
    changed: dict[str, Contact] = {}
    for event in fresh:
        contact = contacts.get(event.contact.external_id)
        if contact is None:
            contact = Contact(external_id=event.contact.external_id, email="", attributes={})
            contacts[contact.external_id] = contact
            new_contacts.append(contact)
        if _apply_contact(contact, event.contact) and contact.id is not None:
            changed[contact.external_id] = contact
        if event.type == "purchase" and (
            contact.first_purchase_at is None or event.occurred_at < contact.first_purchase_at
        ):
            contact.first_purchase_at = event.occurred_at
            if contact.id is not None:
                changed[contact.external_id] = contact
    for contact, new_id in zip(new_contacts, await db.allocate_ids("contact", len(new_contacts)), strict=True):
        contact.id = new_id
    if new_contacts:
        # built again with the id in the constructor: only then does bulk_create write the id we chose
        await Contact.bulk_create(
            [
                Contact(
                    id=c.id,
                    external_id=c.external_id,
                    email=c.email,
                    name=c.name,
                    locale=c.locale,
                    timezone=c.timezone,
                    attributes=c.attributes,
                    first_purchase_at=c.first_purchase_at,
                    created_at=now,
                    updated_at=now,
                )
                for c in new_contacts
            ]
        )
    if changed:
        await Contact.bulk_update(
            list(changed.values()),
            fields=[
                "email",
                "name",
                "locale",
                "timezone",
                "attributes",
                "first_purchase_at",
                "bounced_at",
                "updated_at",
            ],
        )

    # 3. teams: a team an event names for the first time is created (an admin names it properly later)
    slugs = {e.team for e in fresh if e.team}
    teams = {t.slug: t for t in await Team.filter(slug__in=slugs)}
    for slug in sorted(slugs - teams.keys()):
        teams[slug] = await Team.create(slug=slug, name=slug)

    # 4. history: earlier invitations of these people that a new one could collide with
    pol = policy(settings)
    longest = max([pol.fatigue_days] + [s.trigger.fatigue_days or 0 for s in catalog if s.trigger])
    horizon = now - timedelta(days=longest)
    contact_ids = {c.id for c in contacts.values()}
    history: dict[int, list[rules.Prior]] = {cid: [] for cid in contact_ids}
    priorities = {s.id: s.trigger.priority if s.trigger else 0 for s in catalog}
    for row in await Invitation.filter(
        contact_id__in=contact_ids, status__in=rules.ACTIVE_STATUSES, send_at__gte=horizon
    ).values("id", "contact_id", "survey_id", "status", "send_at"):
        history[row["contact_id"]].append(
            rules.Prior(
                row["id"],
                row["survey_id"],
                row["status"],
                row["send_at"],
                priorities.get(row["survey_id"], 0),
            )
        )
    await _employee_history(contacts.values(), history, horizon)

    # 5. decide, in event order, each decision seeing the ones before it
    touchpoint_ids = await db.allocate_ids("touchpoint", len(fresh))
    new_touchpoints: list[Touchpoint] = []
    decided: list[tuple[EventIn, int, rules.Decision]] = []
    for event, tp_id in zip(fresh, touchpoint_ids, strict=True):
        contact = contacts[event.contact.external_id]
        new_touchpoints.append(
            Touchpoint(
                id=tp_id,
                source=event.source,
                external_id=event.external_id,
                type=event.type,
                occurred_at=event.occurred_at,
                contact_id=contact.id,
                team_id=teams[event.team].id if event.team else None,
                agent=event.agent,
                channel=event.channel,
                stage=event.stage,
                attributes=event.attributes,
                received_at=now,
            )
        )
        decision = rules.decide(
            rules.Event(
                event.type,
                event.occurred_at,
                contact.external_id,
                f"{event.source}:{event.external_id}",
                contact.email,
                contact.timezone,
                contact.opted_out_at is not None,
                contact.bounced_at is not None,
            ),
            history[contact.id],
            catalog,
            pol,
            now,
        )
        decided.append((event, tp_id, decision))
        if decision.invite:
            assert decision.survey and decision.survey.trigger and decision.send_at
            prior = history[contact.id]
            if decision.supersedes is not None:
                prior[:] = [p for p in prior if p.invitation_id != decision.supersedes]
            prior.append(
                rules.Prior(None, decision.survey.id, "scheduled", decision.send_at, decision.survey.trigger.priority)
            )
    await Touchpoint.bulk_create(new_touchpoints)

    # 6. invitations (kept for skips too: the reason is part of the contact's timeline) and their e-mails
    invitation_ids = await db.allocate_ids("invitation", sum(1 for *_, d in decided if d.survey))
    new_invitations: list[Invitation] = []
    new_messages: list[OutboxMessage] = []
    superseded: list[int] = []
    ids = iter(invitation_ids)
    for event, tp_id, decision in decided:
        outcome = outcomes[event.index]
        outcome.survey = decision.survey.id if decision.survey else None
        if decision.survey is None:
            outcome.status, outcome.reason = "skipped", decision.reason
            continue
        contact = contacts[event.contact.external_id]
        invitation_id = next(ids)
        locale = i18n.supported(contact.locale) or settings.default_locale
        new_invitations.append(
            Invitation(
                id=invitation_id,
                survey_id=decision.survey.id,
                contact_id=contact.id,
                touchpoint_id=tp_id,
                locale=locale,
                status="scheduled" if decision.invite else "skipped",
                skip_reason=decision.reason,
                send_at=decision.send_at,
                created_at=now,
            )
        )
        outcome.invitation_id = invitation_id
        if not decision.invite:
            outcome.status, outcome.reason = "skipped", decision.reason
            continue
        outcome.status, outcome.send_at = "invited", decision.send_at
        if decision.supersedes is not None:
            superseded.append(decision.supersedes)
        new_messages.append(
            OutboxMessage(
                kind="invitation",
                invitation_id=invitation_id,
                to_email=contact.email,
                locale=locale,
                payload={},
                status="pending",
                attempts=0,
                next_attempt_at=decision.send_at,
                message_id=message_id(invitation_id, settings.mail_from),
                created_at=now,
            )
        )
    await Invitation.bulk_create(new_invitations)
    if new_messages:
        await OutboxMessage.bulk_create(new_messages)
    if superseded:
        await Invitation.filter(id__in=superseded, status="scheduled").update(
            status="skipped", skip_reason=rules.SUPERSEDED
        )
        await OutboxMessage.filter(invitation_id__in=superseded, status="pending").update(status="cancelled")


async def _employee_history(
    contacts: Iterable[Contact], history: dict[int, list[rules.Prior]], horizon: datetime
) -> None:
    """A customer who is also an employee (same address) counts their employee pulses against fatigue."""
    by_email = {c.email: c.id for c in contacts if c.email}
    if not by_email:
        return
    rows = await Invitation.filter(
        employee__email__in=list(by_email), status__in=rules.ACTIVE_STATUSES, send_at__gte=horizon
    ).values("id", "survey_id", "status", "send_at", "employee__email")
    for row in rows:
        history[by_email[row["employee__email"]]].append(
            rules.Prior(row["id"], row["survey_id"], row["status"], row["send_at"], 0)
        )


def _apply_contact(contact: Contact, data: ContactIn) -> bool:
    """Copy what the event says about the person; True when anything changed."""
    changes = {"email": data.email, "name": data.name, "locale": data.locale, "timezone": data.timezone}
    changed = False
    for name, value in changes.items():
        if value is None or getattr(contact, name) == value:
            continue
        if name == "email" and contact.bounced_at is not None:
            contact.bounced_at = None  # a new address gets a new chance
        setattr(contact, name, value)
        changed = True
    if data.attributes is not None and {**contact.attributes, **data.attributes} != contact.attributes:
        contact.attributes = {**contact.attributes, **data.attributes}
        changed = True
    return changed


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
