"""The dispatcher: claim due e-mails, send them over one reused SMTP connection, record each result at once.

Claims (pulse/claims.py) give each due row to exactly one worker, kept fresh by a heartbeat. Each result is
recorded right after the SMTP server answers and before the next message goes out, so a worker killed at any
moment leaves at most the one message that was on the wire unrecorded; after the claim goes stale it is sent
again, once, with the same Message-ID so the receiver can deduplicate. When recording fails (disk full, read-only
file, database away), the worker stops sending and retries the record before anything else. When the relay cannot
be reached, the circuit opens: the batch stops, its unsent claims are released, and the worker tries again later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosmtplib
from jinja2 import Environment
from tortoise.transactions import in_transaction

from pulse import claims, db, mail, sessions, tokens
from pulse.catalog import Catalog
from pulse.models import Contact, FollowUpCase, Invitation, OutboxMessage, User
from pulse.settings import Settings

log = logging.getLogger("pulse.outbox")

TABLE = "outbox_message"
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
# a relay that timed out after DATA may still deliver from its queue: never retry sooner than it would
AFTER_TIMEOUT = timedelta(minutes=15)
BREAKER_BASE = 30.0  # seconds the circuit stays open after the relay could not be reached, doubling
BREAKER_CAP = 600.0


@dataclass
class Result:
    message_id: int
    status: str  # sent | retry | failed | bounced | suppressed
    error: str | None = None
    not_before: timedelta = timedelta(0)  # for a retry: at least this long


class RelayUnreachable(Exception):
    """The SMTP relay could not be reached or dropped us: stop the batch and try again later."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{id(asyncio.current_task()) % 10000}"


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with full jitter around it: 1, 2, 4 … minutes, at most six hours."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * (0.5 + rng())


async def claim(
    batch: int, worker: str, now: datetime | None = None, stale_after: timedelta | None = None
) -> list[int]:
    """Move up to `batch` due messages to `sending` for this worker; return their ids."""
    return await claims.claim(TABLE, batch, worker, stale_after or timedelta(seconds=60), now)


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
        self.unrecorded: list[Result] = []  # sent, but the database would not take the result yet
        self.stranded = False  # claims of ours left in `sending` by a step that failed
        self.breaker_until = 0.0  # monotonic time before which no connection is tried
        self.breaker_trips = 0
        self.connections = 0  # opened so far (the admin page and tests read it)
        self.last_error: str | None = None  # the relay's last failure (unreachable, broke off, timed out)
        self.last_error_at: datetime | None = None
        self.last_ok_at: datetime | None = None  # the relay last accepted a message
        # since this dispatcher started, for its logs and its worker's heartbeat (pulse.health)
        self.sent = 0
        self.refused = 0  # refused permanently (5xx)
        self.connection_failures = 0  # connections that could not be opened, broke off or timed out

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.settings.outbox_claim_seconds)

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
            try:
                await self.smtp.connect()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                self.smtp.close()
                self.smtp = None
                raise RelayUnreachable(f"{type(error).__name__}: {error}") from error
            self.connections += 1
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
        fresh = self.smtp is None or not self.smtp.is_connected
        try:
            refused = await self._send_once(message)
        except aiosmtplib.SMTPServerDisconnected as error:
            if fresh:
                raise RelayUnreachable(f"the relay hung up: {error}") from error
            # a connection kept from an earlier batch may have been closed by the server while idle
            try:
                refused = await self._send_once(message)
            except aiosmtplib.SMTPServerDisconnected as again:
                raise RelayUnreachable(f"the relay hung up: {again}") from again
        if refused:  # one recipient per message: a refusal here is that recipient's
            code, text = next(iter(refused.values()))
            raise aiosmtplib.SMTPRecipientRefused(code, text, next(iter(refused)))

    async def step(self) -> int:
        """Claim one batch, send and record it message by message; return how many messages were handled."""
        if self.unrecorded:  # first what was sent but not yet written down; raises while the database is away
            await record(self.unrecorded, self.settings, self.worker)
            self.unrecorded = []
        if self.stranded:  # claims a failed step could not give back: nothing of ours is on the wire now
            await claims.release_all(TABLE, self.worker)
            self.stranded = False
        if time.monotonic() < self.breaker_until:
            return 0
        ids = await claim(self.settings.outbox_batch, self.worker, stale_after=self.stale_after)
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
        untried = [m.id for m in messages]
        relay_error: str | None = None
        try:
            async with claims.heartbeat(TABLE, self.worker, self.settings.outbox_claim_seconds / 4):
                for row in messages:
                    try:
                        result = await self._deliver(row, self._prepare(row))
                    except RelayUnreachable as error:  # not the message's fault: no attempt is counted
                        relay_error = str(error)
                        self._open_circuit(relay_error, len(untried))
                        break
                    untried.remove(row.id)
                    try:
                        await record([result], self.settings, self.worker)
                    except Exception:
                        self.unrecorded.append(result)  # stop sending what cannot be recorded
                        raise
            if not untried:
                self.breaker_trips = 0
        finally:
            if untried:  # stopped early (circuit open, database error, shutdown): give the rest back at once
                delay = timedelta(seconds=max(self.breaker_until - time.monotonic(), 0))
                try:
                    await asyncio.shield(claims.release(TABLE, self.worker, untried, delay, relay_error))
                except Exception as error:  # the database is away: give them back at the next step
                    self.stranded = True
                    log.warning("could not release %d claimed e-mails: %s", len(untried), error)
            if len(ids) < self.settings.outbox_batch or untried:
                await self.close()  # the queue is drained or the batch stopped: no idle connection
        return len(ids) - len(untried)

    def _open_circuit(self, error: str, waiting: int) -> float:
        """Stop talking to the relay for a while (longer each time in a row); returns the seconds."""
        delay = min(BREAKER_BASE * 2**self.breaker_trips, BREAKER_CAP)
        self.breaker_trips += 1
        self.breaker_until = time.monotonic() + delay
        self._relay_failed(error)
        log.error(
            "SMTP relay %s:%s unreachable (%s): %d e-mails wait %.0f s; %s since the worker started",
            self.settings.smtp_host,
            self.settings.smtp_port,
            error,
            waiting,
            delay,
            _failed_connections(self.connection_failures),
        )
        return delay

    def _relay_failed(self, error: str) -> None:
        self.connection_failures += 1
        self.last_error, self.last_error_at = error, datetime.now(UTC)

    def _broke_off(self, row: Due, error: str, not_before: timedelta = timedelta(0)) -> Result:
        """The connection broke off or timed out in the middle of a message: logged, counted, retried."""
        self._relay_failed(error)
        result = self._retry(row, error, not_before)
        if result.status != "retry":
            outcome = "given up"
        elif not_before:
            outcome = f"retried in {not_before.total_seconds() / 60:.0f} min or later"
        else:
            outcome = "retried with backoff"
        log.warning(
            "SMTP relay %s:%s failed while sending e-mail %s (%s): %s; %s since the worker started",
            self.settings.smtp_host,
            self.settings.smtp_port,
            row.id,
            error,
            outcome,
            _failed_connections(self.connection_failures),
        )
        return result

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
        """Send one message and say what happened; RelayUnreachable when there is no relay to talk to."""
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
            await self._reset()  # a refused message leaves a usable connection: RSET, not a reconnect
            return self._refusal(row, error.code, error.message, bounce=False)
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as error:
            await self.close()  # the relay may have queued it: retry, but not before its queue would deliver
            return self._broke_off(row, f"{type(error).__name__}: {error}", AFTER_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError) as error:
            await self.close()
            return self._broke_off(row, f"{type(error).__name__}: {error}")
        self.sent += 1
        self.last_ok_at = datetime.now(UTC)
        return Result(row.id, "sent")

    async def _reset(self) -> None:
        smtp = self.smtp
        if smtp is None or not smtp.is_connected:
            return await self.close()
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self.close()

    def _refusal(self, row: Due, code: int, text: str, bounce: bool = True) -> Result:
        error = f"{code} {text}".strip()
        if 400 <= code < 500:
            return self._retry(row, error)
        self.refused += 1
        log.warning(
            "e-mail %s refused permanently by the relay (%s): %s; %d refused since the worker started",
            row.id,
            error,
            "the address is marked bounced" if bounce and row.invitation_id else "not retried",
            self.refused,
        )
        return Result(row.id, "bounced" if bounce else "failed", error)

    def _retry(self, row: Due, error: str, not_before: timedelta = timedelta(0)) -> Result:
        if row.attempts >= self.settings.outbox_max_attempts:
            return Result(row.id, "failed", f"gave up after {row.attempts} attempts: {error}")
        return Result(row.id, "retry", error, not_before)

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
            recovery="case_id" in row.payload,  # a case's follow-up question (pulse/recovery.py)
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


def _failed_connections(count: int) -> str:
    return f"{count} failed connection" + ("" if count == 1 else "s")


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


async def record(results: list[Result], settings: Settings, worker: str | None = None) -> None:
    """Write results and their effect on invitations and contacts, in one transaction; only on rows `worker`
    still holds (a claim lost to another worker is logged, never overwritten)."""
    now = datetime.now(UTC)
    async with in_transaction():
        for result in results:
            row = await OutboxMessage.get_or_none(id=result.message_id).select_related("invitation")
            if row is None or row.status != "sending" or (worker is not None and row.claimed_by != worker):
                log.warning(
                    "e-mail %s: its claim passed to another worker; result %r not written",
                    result.message_id,
                    result.status,
                )
                continue
            row.last_error = result.error
            if result.status == "sent":
                row.status, row.sent_at = "sent", now
            elif result.status == "retry":
                row.status = "pending"
                row.next_attempt_at = now + max(backoff(row.attempts), result.not_before)
            else:
                row.status = "failed" if result.status == "bounced" else result.status
            await row.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at"])
            invitation = row.invitation
            if invitation is None:
                continue
            if result.status == "sent":
                if row.kind in ("invitation", "pulse_invitation"):
                    await Invitation.filter(id=invitation.id, status="scheduled").update(
                        status="sent", sent_at=now, expires_at=now + timedelta(days=settings.token_max_age_days)
                    )
            elif result.status in ("failed", "bounced", "suppressed"):
                await Invitation.filter(id=invitation.id, status="scheduled").update(
                    status="suppressed" if result.status == "suppressed" else "failed"
                )
                if result.status == "bounced" and invitation.contact_id:
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
