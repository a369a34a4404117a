"""Data-subject requests: erase a customer or an employee, export everything Pulse holds about a customer, and the
suppression list that keeps an erased person from being imported and surveyed again.

Erasure keeps what trends are made of: each answer's score, day, team and dimensions stay (anonymous counts), so
rollups and every chart read the same before and after. What names or quotes the person goes: their contact row is
overwritten with a random placeholder, comments (and the old comments in an answer's history) are blanked, notes
on their cases are deleted, touchpoint payloads emptied, e-mails in the outbox, undelivered webhook events and
flagged attempts deleted. The suppression list keeps only HMAC-SHA256(secret key, value) of the e-mail address and
of the external id; ingestion skips an event of a suppressed person with the reason `erased` until an admin lifts
the suppression (the person came back with consent).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tortoise.transactions import in_transaction

from pulse import audit, db, labels
from pulse.catalog import Catalog, localized
from pulse.errors import BadRequest, NotFound
from pulse.i18n import N_
from pulse.models import (
    CaseNote,
    Contact,
    Employee,
    FlaggedAttempt,
    FollowUpCase,
    Invitation,
    LoyaltyLatest,
    LoyaltyStanding,
    OutboxMessage,
    Response,
    Suppression,
    Touchpoint,
    WebhookDelivery,
)

ERASED = "erased"  # the skip reason of an event whose person was erased
PLACEHOLDER = "erased-"  # an erased contact's external id: this and 16 random hex digits
UNDELIVERED = ("pending", "sending", "failed")


@dataclass
class Receipt:
    """What an erasure removed, when and by whom: the answer to the person (or their representative)."""

    kind: str  # contact | employee
    external_id: str
    erased_at: datetime
    erased_by: str
    removed: dict[str, int] = field(default_factory=dict)
    kept: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["erased_at"] = self.erased_at.isoformat()
        return data


def normalised_email(email: str) -> str:
    return email.strip().lower()


@lru_cache(maxsize=4)
def _keyed(secret_key: str) -> hmac.HMAC:
    return hmac.new(secret_key.encode(), digestmod=hashlib.sha256)


@lru_cache(maxsize=20_000)
def digest(secret_key: str, kind: str, value: str) -> str:
    """HMAC-SHA256 of `kind:value` under the secret key: the suppression list's only trace of a person.

    Ingestion asks for two per event, and a CRM sends the same people again and again: the keyed state is
    copied rather than rebuilt, and recent answers are remembered."""
    mac = _keyed(secret_key).copy()
    mac.update(f"{kind}:{value}".encode())
    return mac.hexdigest()


def _digests(secret_key: str, emails: Iterable[str], external_ids: Iterable[str]) -> dict[str, str]:
    """Digest -> the value it was made from, for e-mails (normalised) and external ids."""
    found = {digest(secret_key, "email", normalised_email(e)): e for e in emails if e}
    found.update({digest(secret_key, "external_id", x): x for x in external_ids if x})
    return found


async def suppressed(secret_key: str, emails: Iterable[str], external_ids: Iterable[str]) -> set[str]:
    """Which of these e-mail addresses and external ids belong to an erased person (one query, none while the
    list is empty)."""
    # ingestion asks this for every batch: raw SQL, since building an IN of 2,000 terms through the ORM cost
    # more than the lookup itself
    if not await db.read("SELECT 1 FROM suppression LIMIT 1"):
        return set()
    wanted = _digests(secret_key, emails, external_ids)
    if not wanted:
        return set()
    rows = await db.read(f"SELECT digest FROM suppression WHERE digest IN ({db.marks(len(wanted))})", list(wanted))  # noqa: S608
    return {wanted[d] for (d,) in rows}


async def _suppress(secret_key: str, kind: str, email: str, external_id: str) -> None:
    erasure = secrets.token_hex(16)
    found = _digests(secret_key, [email] if email else [], [external_id])
    await Suppression.bulk_create(
        [Suppression(digest=d, kind=kind, erasure=erasure) for d in found], ignore_conflicts=True
    )


async def lift(secret_key: str, value: str, *, actor: str, source: str = "") -> int:
    """Lift the suppression of an erased person, found by e-mail address or external id (either lifts both):
    they came back with consent. Returns how many entries went."""
    value = value.strip()
    if not value:
        raise BadRequest(N_("Give the e-mail address or external id whose suppression to lift."))
    wanted = list(_digests(secret_key, [value] if "@" in value else [], [value]))
    async with in_transaction():
        erasures = await Suppression.filter(digest__in=wanted).values_list("erasure", flat=True)
        if not erasures:
            raise NotFound(N_("%(value)s is not on the suppression list."), value=value)
        removed = await Suppression.filter(erasure__in=list(erasures)).delete()
        # the person came back with consent: naming them here is part of that record
        await audit.record("suppression.lifted", actor=actor, target=value, source=source, details={"removed": removed})
    return removed


def _webhook_match(keys: dict[str, list[int]]) -> tuple[str, list]:
    """A WHERE clause for webhook events whose data carries one of these ids, on either engine."""
    postgres = db.dialect() == "postgres"
    parts, params = [], []
    for key, ids in keys.items():
        if not ids:
            continue
        name, _, event = key.partition("@")
        value = f"(payload->'data'->>'{name}')" if postgres else f"json_extract(payload, '$.data.{name}')"
        condition = f"{value} IN ({db.marks(len(ids))})"
        if event:
            condition = f"(event = '{event}' AND {condition})"
        parts.append(condition)
        params += [str(i) for i in ids] if postgres else ids
    return " OR ".join(parts) or "1 = 0", params


async def _forget_webhooks(keys: dict[str, list[int]], removed: dict[str, int]) -> None:
    """Delete the person's webhook events not yet delivered; blank the comment of those already delivered."""
    where, params = _webhook_match(keys)
    sql = f"SELECT id, status FROM webhook_delivery WHERE {where}"  # noqa: S608 (our key names; ids are bound)
    rows = await db.fetch(sql, params)
    pending = [i for i, status in rows if status in UNDELIVERED]
    delivered = [i for i, status in rows if status not in UNDELIVERED]
    removed["webhook_deliveries_deleted"] = await WebhookDelivery.filter(id__in=pending).delete() if pending else 0
    for delivery in await WebhookDelivery.filter(id__in=delivered):
        data = delivery.payload.get("data", {})
        if data.get("comment"):
            data["comment"] = ""
            await WebhookDelivery.filter(id=delivery.id).update(payload=delivery.payload)
    removed["webhook_deliveries_blanked"] = len(delivered)


def forget_mail(mail_catcher: Any, address: str) -> int:
    """Drop the development mail catcher's copies of mail to `address` (nothing when the catcher is off)."""
    if mail_catcher is None or not address:
        return 0
    return mail_catcher.forget(address)


async def erase_contact(
    external_id: str, secret_key: str, *, actor: str, source: str = "", mail_catcher: Any = None
) -> Receipt:
    """Erase a customer in one transaction (see the module's docstring); returns the receipt."""
    now = datetime.now(UTC)
    removed: dict[str, int] = {}
    async with in_transaction():
        contact = await Contact.filter(external_id=external_id).select_for_update().first()
        if contact is None:
            raise NotFound(N_("No contact has the external id %(external_id)s."), external_id=repr(external_id))
        email = normalised_email(contact.email)
        invitations = list(await Invitation.filter(contact_id=contact.id).values_list("id", flat=True))
        answers = await Response.filter(invitation_id__in=invitations) if invitations else []
        cases = list(await FollowUpCase.filter(contact_id=contact.id).values_list("id", flat=True)) + list(
            await FollowUpCase.filter(response_id__in=[a.id for a in answers]).values_list("id", flat=True)
        )

        # 1. answers: scores, days, teams and dimensions stay (the trends); words go, the old ones too
        comments = 0
        for answer in answers:
            history = [{**entry, "comment": ""} for entry in answer.history]
            if answer.comment or history != answer.history:
                comments += bool(answer.comment) + sum(bool(e.get("comment")) for e in answer.history)
                # updated_at moves: caches of answers (pulse/insights.py) are versioned by it
                await Response.filter(id=answer.id).update(comment="", history=history, updated_at=now)
        removed["comments_blanked"] = comments

        # 2. cases stay (counts, owners' work) but lose the notes about the person and the comments events quote
        removed["case_notes_deleted"] = await CaseNote.filter(case_id__in=cases, kind="note").delete()
        quoted = 0
        for note in await CaseNote.filter(case_id__in=cases).exclude(kind="note"):
            if note.data.get("comment"):
                quoted += 1
                await CaseNote.filter(id=note.id).update(data={**note.data, "comment": ""})
        removed["case_events_blanked"] = quoted

        # 3. what was sent, or was to be sent, to them or about them
        outbox = OutboxMessage.filter(invitation_id__in=invitations)
        removed["emails_deleted"] = await outbox.delete() + (
            await OutboxMessage.filter(to_email=email).delete() if email else 0
        )
        await _forget_webhooks(
            {
                "invitation_id": invitations,
                "id@response.recorded": [a.id for a in answers],
                "response_id": [a.id for a in answers],
                "contact_id": [contact.id],
            },
            removed,
        )
        removed["flagged_attempts_deleted"] = await FlaggedAttempt.filter(invitation_id__in=invitations).delete()
        removed["invitations_stopped"] = await Invitation.filter(contact_id=contact.id, status="scheduled").update(
            status="suppressed"
        )
        removed["loyalty_rows_deleted"] = await LoyaltyLatest.filter(contact_id=contact.id).delete()
        # her standing in each scope goes with her latest answers (the quadrant counts her no more)
        removed["loyalty_rows_deleted"] += await LoyaltyStanding.filter(contact_id=contact.id).delete()
        removed["touchpoints_emptied"] = await Touchpoint.filter(contact_id=contact.id).update(attributes={})

        # 4. the person: a placeholder no one can trace back, and never surveyed again
        await Contact.filter(id=contact.id).update(
            external_id=PLACEHOLDER + secrets.token_hex(8),
            email="",
            name="",
            locale=None,
            timezone=None,
            attributes={},
            opted_out_at=contact.opted_out_at or now,
            updated_at=now,
        )
        await _suppress(secret_key, "contact", email, external_id)
        removed["dev_mail_copies_deleted"] = forget_mail(mail_catcher, email)
        await audit.record(
            "contact.erased", actor=actor, target=f"contact {external_id}", source=source, details=removed
        )
    return Receipt("contact", external_id, now, actor, removed, kept=KEPT_CONTACT)


KEPT_CONTACT = (
    "Scores, days, teams and survey dimensions of the answers (anonymous counts in the trends), the invitations' "
    "statuses and the cases' statuses, without anything that names the person."
)
KEPT_EMPLOYEE = "Their pulse answers, which were anonymous and stay so (they were never linked to the roster)."


async def erase_employee(
    external_id: str, secret_key: str, *, actor: str, source: str = "", mail_catcher: Any = None
) -> Receipt:
    """Erase an employee in one transaction: roster row, invitations and their e-mails; answers stay anonymous."""
    now = datetime.now(UTC)
    removed: dict[str, int] = {}
    async with in_transaction():
        employee = await Employee.filter(external_id=external_id).select_for_update().first()
        if employee is None:
            raise NotFound(N_("No employee has the external id %(external_id)s."), external_id=repr(external_id))
        email = normalised_email(employee.email)
        invitations = list(await Invitation.filter(employee_id=employee.id).values_list("id", flat=True))
        removed["emails_deleted"] = await OutboxMessage.filter(invitation_id__in=invitations).delete() + (
            await OutboxMessage.filter(to_email=email).delete() if email else 0
        )
        removed["flagged_attempts_deleted"] = await FlaggedAttempt.filter(invitation_id__in=invitations).delete()
        removed["invitations_deleted"] = await Invitation.filter(id__in=invitations).delete()
        removed["roster_rows_deleted"] = await Employee.filter(id=employee.id).delete()
        await _suppress(secret_key, "employee", email, external_id)
        removed["dev_mail_copies_deleted"] = forget_mail(mail_catcher, email)
        await audit.record(
            "employee.erased", actor=actor, target=f"employee {external_id}", source=source, details=removed
        )
    return Receipt("employee", external_id, now, actor, removed, kept=KEPT_EMPLOYEE)


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_contact(
    external_id: str, catalog: Catalog, company: str, *, actor: str, source: str = ""
) -> dict[str, Any]:
    """Everything Pulse holds about a customer, as one JSON document a person can read (English labels)."""
    async with in_transaction():
        contact = await Contact.get_or_none(external_id=external_id)
        if contact is None:
            raise NotFound(N_("No contact has the external id %(external_id)s."), external_id=repr(external_id))
        touchpoints = (
            await Touchpoint.filter(contact_id=contact.id).order_by("occurred_at", "id").select_related("team")
        )
        invitations = await Invitation.filter(contact_id=contact.id).order_by("created_at", "id")
        answers = (
            await Response.filter(invitation__contact_id=contact.id)
            .order_by("answered_at", "id")
            .select_related("team")
        )
        cases = await FollowUpCase.filter(contact_id=contact.id).order_by("created_at", "id").select_related("team")
        notes = await CaseNote.filter(case_id__in=[c.id for c in cases]).order_by("id")
        await audit.record("contact.exported", actor=actor, target=f"contact {external_id}", source=source)

    def title(survey_id: str) -> str:
        survey = catalog.get(survey_id)
        return localized(survey.title, "en", company) if survey else survey_id

    return {
        "about": "Everything Pulse holds about this customer, exported on request. Times are in UTC.",
        "exported_at": datetime.now(UTC).isoformat(),
        "contact": {
            "external_id": contact.external_id,
            "email": contact.email,
            "name": contact.name,
            "language": contact.locale,
            "time_zone": contact.timezone,
            "attributes": contact.attributes,
            "first_purchase_at": _moment(contact.first_purchase_at),
            "first_seen_at": _moment(contact.created_at),
        },
        "unsubscribes": {
            "unsubscribed_from_surveys_at": _moment(contact.opted_out_at),
            "address_bounced_at": _moment(contact.bounced_at),
        },
        "touchpoints": [
            {
                "what": labels.label("touchpoint", t.type, "en"),
                "type": t.type,
                "when": _moment(t.occurred_at),
                "source": t.source,
                "reference": t.external_id,
                "team": t.team.name if t.team else None,
                "agent": t.agent,
                "channel": t.channel,
                "stage": t.stage,
                "details": t.attributes,
            }
            for t in touchpoints
        ],
        "invitations": [
            {
                "survey": title(i.survey_id),
                "status": labels.label("invitation_status", i.status, "en") or i.status,
                "why_not_sent": labels.label("skip_reason", i.skip_reason, "en") or None,
                "language": i.locale,
                "to_be_sent_at": _moment(i.send_at),
                "sent_at": _moment(i.sent_at),
                "answered_at": _moment(i.answered_at),
            }
            for i in invitations
        ],
        "answers": [
            {
                "survey": title(a.survey_id),
                "question": a.question_id,
                "score": a.score,
                "comment": a.comment,
                "answered_at": _moment(a.answered_at),
                "language": a.locale,
                "team": a.team.name if a.team else None,
                "counted": a.confirmed and not a.discarded,
                "earlier_answers": [
                    {"score": h.get("score"), "comment": h.get("comment", ""), "given_at": h.get("at")}
                    for h in a.history
                ],
            }
            for a in answers
        ],
        "cases": [
            {
                "survey": title(c.survey_id),
                "score": c.score,
                "status": labels.label("case_status", c.status, "en") or c.status,
                "team": c.team.name if c.team else None,
                "opened_at": _moment(c.created_at),
                "notes": [
                    {"written_at": _moment(n.created_at), "text": n.body}
                    for n in notes
                    if n.case_id == c.id and n.kind == "note"
                ],
            }
            for c in cases
        ],
    }
