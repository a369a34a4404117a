"""The retention policy: free text and personal data older than the settings say are blanked or deleted, in bounded
batches, while every score, dimension and rollup stays, so trends read the same before and after.

Each kind is one predicate over one table. `plan` counts the rows the predicate matches (the dry run); `apply`
changes them `batch` at a time, each batch in its own transaction, and a changed row no longer matches: the dry run
and the run count the same rows, and a second run finds nothing. The worker runs it once a day (`daily`): of several
workers, the one whose guarded UPDATE of the `scheduled_run` row succeeds does it, and appends one `retention.run`
audit event with the counts.

What goes, per setting (0 keeps that kind forever):
- PULSE_RETAIN_COMMENTS_DAYS: comments of answers given before then (also the old comments in an answer's history),
  comments of employee pulse rounds closed before then, case notes' text and the comment quoted by a
  "score changed" note. Scores, days, teams and dimensions stay.
- PULSE_RETAIN_TOUCHPOINTS_DAYS: a touchpoint's attributes (the sender's free-form payload) and agent name. The event
  itself (type, time, team, channel, stage) stays: invitations and their answers point at it.
- PULSE_RETAIN_CONTACT_DAYS: a contact with no touchpoint and no import for that long loses name, e-mail address,
  attributes, time zone and first-purchase date. Its external id stays, so a later import finds the same row and an
  opt-out keeps holding; erasure (pulse/privacy.py) is what removes the id too.
- PULSE_RETAIN_LOGS_DAYS: e-mails already sent, failed or suppressed (they hold addresses and names), webhook events
  delivered or given up (they quote answers), flagged attempts, and expired sign-in sessions (address and browser).
- PULSE_RETAIN_AUDIT_DAYS: audit events (pulse.audit.prune).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from pulse import audit, db
from pulse.models import AuditEvent, Response, ScheduledRun
from pulse.settings import Settings

log = logging.getLogger("pulse.retention")

RUN_NAME = "retention"
EVERY = timedelta(days=1)
BATCH = 1000
NEVER = datetime(2000, 1, 1, tzinfo=UTC)  # the first claim's "last started": long enough ago

# kind -> the setting whose days it follows, in the order the counts are reported
KINDS: dict[str, str] = {
    "comments": "PULSE_RETAIN_COMMENTS_DAYS",
    "pulse_comments": "PULSE_RETAIN_COMMENTS_DAYS",
    "case_notes": "PULSE_RETAIN_COMMENTS_DAYS",
    "touchpoints": "PULSE_RETAIN_TOUCHPOINTS_DAYS",
    "contacts": "PULSE_RETAIN_CONTACT_DAYS",
    "outbox": "PULSE_RETAIN_LOGS_DAYS",
    "webhooks": "PULSE_RETAIN_LOGS_DAYS",
    "flagged_attempts": "PULSE_RETAIN_LOGS_DAYS",
    "sessions": "PULSE_RETAIN_LOGS_DAYS",
    "audit": "PULSE_RETAIN_AUDIT_DAYS",
}


@dataclass(frozen=True)
class Policy:
    """Days each kind of data is kept; 0 keeps it forever."""

    comments_days: int = 730
    touchpoints_days: int = 730
    contact_days: int = 1095
    logs_days: int = 90
    audit_days: int = 730

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            comments_days=settings.retain_comments_days,
            touchpoints_days=settings.retain_touchpoints_days,
            contact_days=settings.retain_contact_days,
            logs_days=settings.retain_logs_days,
            audit_days=settings.retain_audit_days,
        )

    def days(self, kind: str) -> int:
        setting = KINDS[kind]
        return {
            "PULSE_RETAIN_COMMENTS_DAYS": self.comments_days,
            "PULSE_RETAIN_TOUCHPOINTS_DAYS": self.touchpoints_days,
            "PULSE_RETAIN_CONTACT_DAYS": self.contact_days,
            "PULSE_RETAIN_LOGS_DAYS": self.logs_days,
            "PULSE_RETAIN_AUDIT_DAYS": self.audit_days,
        }[setting]


Change = Callable[[list[Any], datetime], Awaitable[None]]


@dataclass(frozen=True)
class Sweep:
    """One kind: the rows of `table` that `where` matches (with `?` for the cutoff, repeated `cutoffs` times) go
    through `change`, which must leave them no longer matching."""

    table: str
    where: str
    change: Change
    cutoffs: int = 1
    keyset: bool = True  # page by integer id; False re-reads from the start (ids that do not order as numbers)


def _postgres() -> bool:
    return db.dialect() == "postgres"


def _object_filled(column: str) -> str:
    """SQL true when a JSON object column has at least one key."""
    if _postgres():
        return f"{column}::jsonb <> '{{}}'::jsonb"
    return f"EXISTS (SELECT 1 FROM json_each({column}))"


def _history_quotes() -> str:
    """SQL true when an answer's history holds an earlier comment."""
    if _postgres():
        return "EXISTS (SELECT 1 FROM jsonb_array_elements(history::jsonb) h WHERE h ->> 'comment' <> '')"
    return "EXISTS (SELECT 1 FROM json_each(history) h WHERE json_extract(h.value, '$.comment') <> '')"


def _note_quotes() -> str:
    """SQL true when a case note's data quotes an answer's comment (a "score changed" note)."""
    if _postgres():
        return "COALESCE(data::jsonb ->> 'comment', '') <> ''"
    return "COALESCE(json_extract(data, '$.comment'), '') <> ''"


async def _blank_comments(ids: list[Any], now: datetime) -> None:
    # the history is rewritten in Python (one JSON shape on both engines); updated_at moves, so every cache of
    # answers (pulse/insights.py) is read again and shows no blanked comment
    for row_id, history in await db.fetch(f"SELECT id, history FROM response WHERE id IN ({db.marks(len(ids))})", ids):
        blanked = [{**entry, "comment": ""} for entry in db.as_json(history)]
        await Response.filter(id=row_id).update(comment="", history=blanked, updated_at=now)


async def _blank_pulse_comments(ids: list[Any], now: datetime) -> None:
    await db.execute(f"UPDATE pulse_answer SET comment = '' WHERE id IN ({db.marks(len(ids))})", ids)


async def _blank_notes(ids: list[Any], now: datetime) -> None:
    forget = "data::jsonb - 'comment'" if _postgres() else "json_remove(data, '$.comment')"
    await db.execute(f"UPDATE case_note SET body = '', data = {forget} WHERE id IN ({db.marks(len(ids))})", ids)


async def _strip_touchpoints(ids: list[Any], now: datetime) -> None:
    await db.execute(f"UPDATE touchpoint SET attributes = '{{}}', agent = NULL WHERE id IN ({db.marks(len(ids))})", ids)


async def _anonymise_contacts(ids: list[Any], now: datetime) -> None:
    await db.execute(
        "UPDATE contact SET email = '', name = '', attributes = '{}', timezone = NULL, first_purchase_at = NULL"
        f" WHERE id IN ({db.marks(len(ids))})",
        ids,
    )


def _delete(table: str) -> Change:
    async def change(ids: list[Any], now: datetime) -> None:
        await db.execute(f"DELETE FROM {table} WHERE id IN ({db.marks(len(ids))})", ids)

    return change


def sweeps() -> dict[str, Sweep]:
    """Every kind but the audit log (pulse.audit prunes its own table), for the open database's dialect."""
    return {
        "comments": Sweep(
            "response",
            f"COALESCE(answered_at, created_at) < ? AND (comment <> '' OR {_history_quotes()})",
            _blank_comments,
        ),
        "pulse_comments": Sweep(
            "pulse_answer",
            "comment <> '' AND round_id IN (SELECT id FROM pulse_round WHERE closes_at < ?)",
            _blank_pulse_comments,
            keyset=False,
        ),
        "case_notes": Sweep("case_note", f"created_at < ? AND (body <> '' OR {_note_quotes()})", _blank_notes),
        "touchpoints": Sweep(
            "touchpoint",
            f"occurred_at < ? AND (agent IS NOT NULL OR {_object_filled('attributes')})",
            _strip_touchpoints,
        ),
        "contacts": Sweep(
            "contact",
            "created_at < ? AND updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM touchpoint t WHERE t.contact_id = contact.id AND t.occurred_at >= ?)"
            " AND (email <> '' OR name <> '' OR timezone IS NOT NULL OR first_purchase_at IS NOT NULL"
            f" OR {_object_filled('attributes')})",
            _anonymise_contacts,
            cutoffs=3,
        ),
        "outbox": Sweep(
            "outbox_message",
            "status IN ('sent', 'failed', 'suppressed') AND COALESCE(sent_at, created_at) < ?",
            _delete("outbox_message"),
        ),
        "webhooks": Sweep(
            "webhook_delivery",
            "status IN ('delivered', 'failed') AND created_at < ?",
            _delete("webhook_delivery"),
        ),
        "flagged_attempts": Sweep("flagged_attempt", "created_at < ?", _delete("flagged_attempt")),
        "sessions": Sweep("session", "expires_at < ?", _delete("session")),
    }


def _cutoff(policy: Policy, kind: str, now: datetime) -> datetime | None:
    days = policy.days(kind)
    return now - timedelta(days=days) if days > 0 else None


async def plan(policy: Policy, now: datetime | None = None) -> dict[str, int]:
    """The dry run: how many rows of each kind the policy would blank or delete now."""
    now = now or datetime.now(UTC)
    counts = dict.fromkeys(KINDS, 0)
    for kind, sweep in sweeps().items():
        if (cutoff := _cutoff(policy, kind, now)) is not None:
            params = [db.bound_time(cutoff)] * sweep.cutoffs
            rows = await db.fetch(f"SELECT COUNT(*) FROM {sweep.table} WHERE {sweep.where}", params)
            counts[kind] = int(rows[0][0])
    if (cutoff := _cutoff(policy, "audit", now)) is not None:
        counts["audit"] = await AuditEvent.filter(at__lt=cutoff).count()
    return counts


async def _apply_sweep(sweep: Sweep, cutoff: datetime, now: datetime, batch: int) -> int:
    params = [db.bound_time(cutoff)] * sweep.cutoffs
    done = 0
    after = 0
    while True:
        async with in_transaction():  # one batch, one transaction: a long run never holds the writer for long
            if sweep.keyset:
                sql = f"SELECT id FROM {sweep.table} WHERE id > ? AND {sweep.where} ORDER BY id LIMIT ?"
                rows = await db.fetch(sql, [after, *params, batch])
            else:
                rows = await db.fetch(f"SELECT id FROM {sweep.table} WHERE {sweep.where} LIMIT ?", [*params, batch])
            ids = [row[0] for row in rows]
            if not ids:
                return done
            await sweep.change(ids, now)
        done += len(ids)
        after = ids[-1]


async def apply(policy: Policy, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Blank or delete what the policy says has been kept long enough, `batch` rows per transaction; returns the
    counts per kind, which are what `plan` said at the same moment."""
    now = now or datetime.now(UTC)
    counts = dict.fromkeys(KINDS, 0)
    for kind, sweep in sweeps().items():
        if (cutoff := _cutoff(policy, kind, now)) is not None:
            counts[kind] = await _apply_sweep(sweep, cutoff, now, batch)
    counts["audit"] = await audit.prune(policy.audit_days, now, batch)
    return counts


async def run(policy: Policy, *, actor: str, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Apply the policy and append one `retention.run` audit event with the counts (after the prune, so the
    event of this run is never pruned by it)."""
    now = now or datetime.now(UTC)
    counts = await apply(policy, now, batch)
    async with in_transaction():
        await audit.record("retention.run", actor=actor, target="retention policy", details=counts)
    return counts


async def claim(name: str, now: datetime, every: timedelta = EVERY) -> bool:
    """True for the one caller that may start `name` now: it last started at least `every` ago, and this caller's
    guarded UPDATE is the one that moved it (several workers may ask at the same moment)."""
    if await ScheduledRun.filter(name=name, last_started_at__gt=now - every).exists():
        return False  # the common case, every loop of every worker: a read, no write
    await ScheduledRun.bulk_create([ScheduledRun(name=name, last_started_at=NEVER)], ignore_conflicts=True)
    return await ScheduledRun.filter(name=name, last_started_at__lte=now - every).update(last_started_at=now) == 1


async def daily(settings: Settings, now: datetime | None = None, batch: int = BATCH) -> int:
    """The worker's step: run the policy when a day has passed since any worker last started it; returns 0 (a
    run leaves no backlog for the loop to hurry through)."""
    now = now or datetime.now(UTC)
    if not await claim(RUN_NAME, now):
        return 0
    try:
        counts = await run(Policy.from_settings(settings), actor=audit.WORKER, now=now, batch=batch)
    except Exception:
        # give the day back, so the loop's next try (or another worker) runs it rather than waiting a day
        await ScheduledRun.filter(name=RUN_NAME, last_started_at=now).update(last_started_at=now - EVERY)
        raise
    log.info("retention: %s", ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "nothing to remove")
    return 0
