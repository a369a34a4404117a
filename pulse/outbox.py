"""The dispatcher: claim due e-mails, send them over one reused SMTP connection, record each result.

Claiming is one conditional UPDATE (with FOR UPDATE SKIP LOCKED on PostgreSQL): a row moves from
`pending` to `sending` for exactly one worker, so any number of workers never send a message twice.
A worker that dies after sending but before recording leaves the row in `sending`; after CLAIM_TIMEOUT it
is sent again, at most once more, with the same Message-ID so the receiver can deduplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosmtplib
from jinja2 import Environment
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from pulse import db, mail, sessions, tokens
from pulse.catalog import Catalog
from pulse.models import Contact, FollowUpCase, Invitation, OutboxMessage, User
from pulse.settings import Settings

log = logging.getLogger("pulse.outbox")

CLAIM_TIMEOUT = timedelta(minutes=10)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
RECORD_EVERY = 100  # results are written in small groups: a crash resends at most this many, once


@dataclass
class Result:
    message_id: int
    status: str  # sent | retry | failed | bounced | suppressed
    error: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{id(asyncio.current_task()) % 10000}"


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with full jitter around it: 1, 2, 4 … minutes, at most six hours."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * (0.5 + rng())


async def claim(batch: int, worker: str, now: datetime | None = None) -> list[int]:
    """Move up to `batch` due messages to `sending` for this worker; return their ids."""
    now = now or datetime.now(UTC)
    stale = now - CLAIM_TIMEOUT
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        sql = (
            "UPDATE outbox_message SET status = 'sending', claimed_at = $1, claimed_by = $2, attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM outbox_message WHERE (status = 'pending' AND next_attempt_at <= $1) "
            "OR (status = 'sending' AND claimed_at < $3) ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) "
            "RETURNING id"
        )
        params: list = [now, worker, stale, batch]
    else:
        # one statement, so SQLite runs it atomically; the outer WHERE re-checks the status
        sql = (
            "UPDATE outbox_message SET status = 'sending', claimed_at = ?, claimed_by = ?, attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM outbox_message WHERE (status = 'pending' AND next_attempt_at <= ?) "
            "OR (status = 'sending' AND claimed_at < ?) ORDER BY next_attempt_at LIMIT ?) "
            "AND (status = 'pending' OR (status = 'sending' AND claimed_at < ?)) RETURNING id"
        )
        params = [
            now,
            worker,
            now,
            stale,
            batch,
            stale,
        ]  # stored as UTC ISO text, so text order is time order
    rows = await connection.execute_query_dict(sql, params)
    return sorted(row["id"] for row in rows)


class Dispatcher:
    """Sends claimed messages over one SMTP connection, reconnecting when the server drops it."""

    def __init__(self, settings: Settings, catalog: Catalog, env: Environment) -> None:
        self.settings = settings
        self.catalog = catalog
        self.env = env
        self.smtp: aiosmtplib.SMTP | None = None
        self.worker = worker_name()
        self.cases: dict[int, FollowUpCase] = {}
        self.users: dict[int, User] = {}

    async def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        if smtp.is_connected:
            try:
                await smtp.quit()
                return
            except (aiosmtplib.SMTPException, OSError):
                pass
        smtp.close()  # releases the transport even when the server already hung up

    async def _connect(self) -> aiosmtplib.SMTP:
        if self.smtp is None or not self.smtp.is_connected:
            self.smtp = mail.smtp_client(self.settings)
            await self.smtp.connect()
        return self.smtp

    async def _send_once(self, message: mail.OutgoingMail) -> dict:
        smtp = await self._connect()
        transport = smtp.transport
        try:
            refused, _ = await smtp.sendmail(message.sender, [message.recipient], message.data)
        except aiosmtplib.SMTPServerDisconnected:
            # aiosmtplib forgets a transport the server hung up on without closing it: close it here
            if transport is not None:
                transport.abort()
            await self.close()
            raise
        return refused

    async def _send(self, message: mail.OutgoingMail) -> None:
        try:
            refused = await self._send_once(message)
        except aiosmtplib.SMTPServerDisconnected:
            # a connection kept from an earlier batch may have been closed by the server while idle
            refused = await self._send_once(message)
        if refused:  # one recipient per message: a refusal here is that recipient's
            code, text = next(iter(refused.values()))
            raise aiosmtplib.SMTPRecipientRefused(code, text, next(iter(refused)))

    async def step(self) -> int:
        """Claim one batch, send it, record it; return how many messages were handled."""
        ids = await claim(self.settings.outbox_batch, self.worker)
        if not ids:
            await self.close()  # nothing due: do not hold an idle connection open
            return 0
        messages = await load(ids)
        case_ids = [m.payload.get("case_id") for m in messages if m.kind in CASE_KINDS]
        self.cases = {
            case.id: case
            for case in await FollowUpCase.filter(id__in=case_ids).select_related(
                "response", "contact", "team", "owner"
            )
        }
        user_ids = [m.payload.get("user_id") for m in messages if m.kind == "password_reset"]
        self.users = {user.id: user for user in await User.filter(id__in=user_ids, is_active=True)}
        # Pipelined: the next message is rendered while the previous one is on the wire, and results are
        # written while later messages are sent. One message is in flight at a time on the connection.
        results: list[Result] = []
        sending: asyncio.Task[Result] | None = None
        recording: asyncio.Task[None] | None = None

        async def flush(group: list[Result]) -> None:
            nonlocal recording
            if recording is not None:
                await recording
            recording = asyncio.create_task(record(group, self.settings))

        try:
            for row in messages:
                prepared = self._prepare(row)
                if sending is not None:
                    results.append(await sending)
                sending = asyncio.create_task(self._deliver(row, prepared))
                if len(results) >= RECORD_EVERY:
                    await flush(results)
                    results = []
            if sending is not None:
                results.append(await sending)
                sending = None
        finally:
            if sending is not None:
                results.append(await sending)
            if results:
                await flush(results)
            if recording is not None:
                await recording
            if len(ids) < self.settings.outbox_batch:
                await self.close()  # the queue is drained: do not hold an idle connection open
        return len(ids)

    def _prepare(self, row: Due) -> mail.OutgoingMail | Result:
        """The message to send, or the result that says why it must not be sent."""
        try:
            return self.render(row)
        except SuppressedError as reason:
            return Result(row.id, "suppressed", str(reason))
        except Exception as error:  # one message that cannot be rendered must not hold up the others
            log.exception("cannot render outbox message %s", row.id)
            return Result(row.id, "failed", f"cannot be rendered: {type(error).__name__}: {error}")

    async def _deliver(self, row: Due, prepared: mail.OutgoingMail | Result) -> Result:
        if isinstance(prepared, Result):
            return prepared
        try:
            await self._send(prepared)
        except aiosmtplib.SMTPRecipientRefused as refused:
            return self._refusal(row, refused.code, refused.message)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            first = refused.recipients[0]
            return self._refusal(row, first.code, first.message)
        except aiosmtplib.SMTPResponseException as error:
            await self.close()
            return self._refusal(row, error.code, error.message, bounce=False)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self.close()  # timeouts and dropped connections: reconnect for the next one, retry this one
            return self._retry(row, f"{type(error).__name__}: {error}")
        return Result(row.id, "sent")

    def _refusal(self, row: Due, code: int, text: str, bounce: bool = True) -> Result:
        error = f"{code} {text}".strip()
        if 400 <= code < 500:
            return self._retry(row, error)
        return Result(row.id, "bounced" if bounce else "failed", error)

    def _retry(self, row: Due, error: str) -> Result:
        if row.attempts >= self.settings.outbox_max_attempts:
            return Result(row.id, "failed", f"gave up after {row.attempts} attempts: {error}")
        return Result(row.id, "retry", error)

    def render(self, row: Due) -> mail.OutgoingMail:
        if row.kind in CASE_KINDS:
            return self._render_case(row)
        if row.kind in ("pulse_invitation", "pulse_reminder"):
            return self._render_pulse(row)
        if row.kind == "password_reset":
            user = self.users.get(row.payload.get("user_id"))
            if user is None:
                raise SuppressedError("the user no longer exists or is deactivated")
            token = sessions.reset_token(self.settings.secret_key, user)
            return mail.reset_message(
                self.env,
                self.settings,
                user=user,
                locale=row.locale,
                message_id=row.message_id,
                url=f"{self.settings.base_url}/password-reset/{token}",
            )
        if row.kind != "invitation":
            raise SuppressedError(f"unknown message kind {row.kind!r}")
        if row.invitation_id is None or row.email is None:
            raise SuppressedError("the invitation or its contact no longer exists")
        if row.opted_out:
            raise SuppressedError("the contact opted out")
        if row.bounced:
            raise SuppressedError("the contact's address bounced")
        survey = self.catalog.get(row.survey_id or "")
        if survey is None:
            raise SuppressedError(f"survey {row.survey_id!r} is no longer in the catalog")
        secret, base = self.settings.secret_key, self.settings.base_url
        survey_token = tokens.make_token(secret, "survey", row.invitation_id)
        unsubscribe_token = tokens.make_token(secret, "unsubscribe", row.invitation_id)
        return mail.survey_message(
            self.env,
            self.settings,
            survey=survey,
            locale=row.locale,
            to=row.email,
            name=row.name or None,
            touchpoint_type=row.touchpoint_type,
            score_url=f"{base}/s/{survey_token}",
            unsubscribe_url=f"{base}/u/{unsubscribe_token}",
            expires_at=datetime.now(UTC) + timedelta(days=self.settings.token_max_age_days),
            message_id=row.message_id,
        )

    def _render_pulse(self, row: Due) -> mail.OutgoingMail:
        survey = self.catalog.get(row.survey_id or "")
        if row.invitation_id is None or survey is None:
            raise SuppressedError("the pulse invitation or its survey no longer exists")
        token = tokens.pulse_token(self.settings.secret_key, row.invitation_id)
        return mail.pulse_message(
            self.env,
            self.settings,
            survey=survey,
            locale=row.locale,
            to=row.to_email,
            url=f"{self.settings.base_url}/p/{token}",
            reminder=row.kind == "pulse_reminder",
            message_id=row.message_id,
        )

    def _render_case(self, row: Due) -> mail.OutgoingMail:
        case = self.cases.get(row.payload.get("case_id"))
        if case is None:
            raise SuppressedError("the case no longer exists")
        survey = self.catalog.get(case.survey_id)
        return mail.case_message(
            self.env,
            self.settings,
            kind=row.kind,
            case=case,
            survey=survey,
            locale=row.locale,
            to=row.to_email,
            message_id=row.message_id,
        )


CASE_KINDS = ("case_opened", "case_escalated")


@dataclass(frozen=True)
class Due:
    """A claimed message with what rendering it needs, read in one query."""

    id: int
    kind: str
    locale: str
    message_id: str
    attempts: int
    invitation_id: int | None
    survey_id: str | None
    email: str | None
    name: str | None
    opted_out: bool
    bounced: bool
    touchpoint_type: str | None
    to_email: str
    payload: dict


async def load(ids: list[int]) -> list[Due]:
    """The claimed messages, in id order, joined with their invitation, contact and touchpoint."""
    rows = await db.fetch(
        "SELECT o.id, o.kind, o.locale, o.message_id, o.attempts, i.id, i.survey_id, c.email, c.name,"
        " c.opted_out_at, c.bounced_at, t.type, o.to_email, o.payload FROM outbox_message o"
        " LEFT JOIN invitation i ON i.id = o.invitation_id LEFT JOIN contact c ON c.id = i.contact_id"
        f" LEFT JOIN touchpoint t ON t.id = i.touchpoint_id WHERE o.id IN ({db.marks(len(ids))}) ORDER BY o.id",
        ids,
    )
    return [
        Due(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9] is not None,
            r[10] is not None,
            r[11],
            r[12],
            db.as_json(r[13]) or {},
        )
        for r in rows
    ]


class SuppressedError(Exception):
    """The message must not be sent (opted out, bounced, gone); the reason is recorded."""


async def record(results: list[Result], settings: Settings) -> None:
    """Write a group of results and their effect on invitations and contacts, in one transaction."""
    now = datetime.now(UTC)
    by_status: dict[str, list[Result]] = {}
    for result in results:
        by_status.setdefault(result.status, []).append(result)
    async with in_transaction():
        sent = [r.message_id for r in by_status.get("sent", [])]
        if sent:
            await OutboxMessage.filter(id__in=sent).update(status="sent", sent_at=now, last_error=None)
            expires = now + timedelta(days=settings.token_max_age_days)
            invitation_ids = await OutboxMessage.filter(
                id__in=sent, kind__in=("invitation", "pulse_invitation")
            ).values_list("invitation_id", flat=True)
            await Invitation.filter(id__in=invitation_ids, status="scheduled").update(
                status="sent", sent_at=now, expires_at=expires
            )
        for result in by_status.get("retry", []):
            row = await OutboxMessage.get(id=result.message_id)
            row.status, row.last_error = "pending", result.error
            row.next_attempt_at = now + backoff(row.attempts)
            await row.save(update_fields=["status", "last_error", "next_attempt_at"])
        for status in ("failed", "bounced", "suppressed"):
            for result in by_status.get(status, []):
                await _give_up(result, status, now)


async def _give_up(result: Result, status: str, now: datetime) -> None:
    row = await OutboxMessage.get(id=result.message_id).select_related("invitation")
    row.status = "failed" if status == "bounced" else status
    row.last_error = result.error
    await row.save(update_fields=["status", "last_error"])
    invitation = row.invitation
    if invitation is None:
        return
    await Invitation.filter(id=invitation.id, status="scheduled").update(
        status="suppressed" if status == "suppressed" else "failed"
    )
    if status == "bounced" and invitation.contact_id:
        # a permanent refusal: never mail this address again until the CRM sends a new one
        await Contact.filter(id=invitation.contact_id, bounced_at=None).update(bounced_at=now)
        await suppress_scheduled(invitation.contact_id, "the contact's address bounced")


async def suppress_scheduled(contact_id: int, reason: str) -> int:
    """Cancel the e-mails not yet sent to a contact (opted out or bounced); return how many."""
    scheduled = await Invitation.filter(contact_id=contact_id, status="scheduled").values_list("id", flat=True)
    if not scheduled:
        return 0
    await OutboxMessage.filter(invitation_id__in=scheduled, status="pending").update(
        status="suppressed", last_error=reason
    )
    return await Invitation.filter(id__in=scheduled).update(status="suppressed")
