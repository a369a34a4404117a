"""Delivery health, read from the database so that every web process tells the same truth about every worker.

Workers write a heartbeat row after each loop of their outbox (`beat`); /healthz and the admin's Delivery page
read `report`: whether the database accepts a write, when a worker last finished a loop, how long the oldest due
e-mail has waited, and what the SMTP relay last said.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pulse import db, storage
from pulse.models import WorkerHeartbeat
from pulse.settings import Settings

PROBE_TIMEOUT = 2.0  # seconds the write probe (and then the reads) may take: a monitor must get an answer
DUE_LIMIT = timedelta(minutes=15)  # an e-mail due longer than this means delivery has stalled
RELAY_LIMIT = timedelta(minutes=15)  # a relay failing this long, with e-mails waiting, has stalled delivery too
FORGET_AFTER = timedelta(days=7)  # heartbeats of workers gone this long are deleted


def process_name() -> str:
    """The name a worker process goes by: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def stale_after(settings: Settings) -> timedelta:
    """How old a worker's last loop may be: a few idle intervals, plus a step that waits on a slow relay (one
    message that times out, then a connection that times out) before its circuit opens."""
    return timedelta(seconds=3 * settings.worker_interval + 2 * settings.smtp_timeout)


async def probe_write() -> None:
    """A tiny real write: the one row of health_probe, inserted or rewritten."""
    now = datetime.now(UTC)
    await db.execute(
        "INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = ?",
        [now, now],
    )


@dataclass
class Report:
    """What /healthz says, and what the Delivery page shows."""

    database_error: str | None = None
    problems: list[str] = field(default_factory=list)
    readable: bool = False
    workers: list[WorkerHeartbeat] = field(default_factory=list)
    last_loop_at: datetime | None = None
    loop_age: timedelta | None = None
    due: int = 0
    oldest_due: timedelta | None = None
    pending: int = 0
    last_ok_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    relay_failing_since: datetime | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_json(self, settings: Settings) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        def seconds(value: timedelta | None) -> int | None:
            return int(value.total_seconds()) if value is not None else None

        return {
            "status": "ok" if self.healthy else "unavailable",
            "problems": self.problems,
            "database": {"writable": self.database_error is None, "error": self.database_error},
            "worker": {
                "last_loop_at": when(self.last_loop_at),
                "seconds_ago": seconds(self.loop_age),
                "stale_after_seconds": seconds(stale_after(settings)),
            }
            if self.readable
            else None,
            "outbox": {
                "due": self.due,
                "oldest_due_seconds": seconds(self.oldest_due),
                "limit_seconds": seconds(DUE_LIMIT),
            }
            if self.readable
            else None,
            "smtp": {
                "last_ok_at": when(self.last_ok_at),
                "last_error": self.last_error,
                "last_error_at": when(self.last_error_at),
            }
            if self.readable
            else None,
        }


async def reachable(settings: Settings) -> storage.Fault | None:
    """Whether this process can reach its database (a read of one row, bounded in time): None when it can."""
    try:
        # a table, not `SELECT 1`: SQLite answers that without opening the file
        await asyncio.wait_for(db.fetch("SELECT id FROM health_probe LIMIT 1"), PROBE_TIMEOUT)
    except TimeoutError:
        return storage.Fault(storage.UNAVAILABLE, f"no answer within {PROBE_TIMEOUT:.0f} s")
    except Exception as error:
        if (fault := storage.fault(error, settings.database_url)) is None:
            raise
        return fault
    return None


async def report(settings: Settings, *, probe: bool = True) -> Report:
    """Every check, each bounded in time; a check that fails adds one sentence to `problems`. Without `probe`,
    the database's writability is not tried (a page that shows the rest)."""
    found = Report()
    try:
        if probe:
            await asyncio.wait_for(probe_write(), PROBE_TIMEOUT)
    except Exception as error:
        fault = storage.fault(error, settings.database_url)
        if isinstance(error, TimeoutError):
            fault = storage.Fault(storage.UNAVAILABLE, f"no answer within {PROBE_TIMEOUT:.0f} s")
        elif fault is None:
            raise
        found.database_error = fault.detail
        found.problems.append(fault.sentence)
    try:
        await asyncio.wait_for(_read(found, settings), PROBE_TIMEOUT)
        found.readable = True
    except Exception as error:
        if not isinstance(error, TimeoutError) and storage.fault(error, settings.database_url) is None:
            raise
        if found.database_error is None:
            found.database_error = str(error) or type(error).__name__
            found.problems.append(storage.SENTENCES[storage.UNAVAILABLE])
    return found


async def _read(found: Report, settings: Settings) -> None:
    now = found.checked_at = datetime.now(UTC)
    found.workers = await WorkerHeartbeat.all().order_by("-last_loop_at")
    rows = await db.fetch(
        "SELECT COUNT(*), MIN(next_attempt_at) FROM outbox_message"
        " WHERE status IN ('pending', 'sending') AND next_attempt_at <= ?",
        [now],
    )
    found.due, oldest = rows[0][0], db.as_datetime(rows[0][1])
    found.oldest_due = now - oldest if oldest else None
    if found.workers:
        found.last_loop_at = found.workers[0].last_loop_at
        found.loop_age = now - found.last_loop_at
        if found.loop_age > stale_after(settings):
            found.problems.append(
                f"No worker has finished a loop for {found.loop_age.total_seconds():.0f} s (the limit is "
                f"{stale_after(settings).total_seconds():.0f} s): start `pulse worker`, or read its log."
            )
    if found.oldest_due is not None and found.oldest_due > DUE_LIMIT:
        found.problems.append(
            f"The oldest due e-mail has waited {found.oldest_due.total_seconds():.0f} s (the limit is "
            f"{DUE_LIMIT.total_seconds():.0f} s): check the workers and the SMTP relay."
        )
    _relay(found, now)
    if found.relay_failing_since and now - found.relay_failing_since > RELAY_LIMIT:
        # e-mails the circuit holds back are rescheduled, so their wait restarts: the relay's failure tells it
        found.pending = await _waiting()
        if found.pending:
            found.problems.append(
                f"The SMTP relay has failed for {(now - found.relay_failing_since).total_seconds():.0f} s with "
                f"{found.pending} e-mail(s) waiting: check the relay and the PULSE_SMTP_* settings."
            )


def _relay(found: Report, now: datetime) -> None:
    """The last send, the last SMTP error, and since when the relay has failed for every worker that tried."""
    oks = [w.last_smtp_ok_at for w in found.workers if w.last_smtp_ok_at]
    errors = [w for w in found.workers if w.last_smtp_error_at]
    found.last_ok_at = max(oks) if oks else None
    if errors:
        latest = max(errors, key=lambda w: w.last_smtp_error_at or now)
        found.last_error, found.last_error_at = latest.last_smtp_error, latest.last_smtp_error_at
    failing = [w.smtp_failing_since for w in found.workers if w.smtp_failing_since]
    if failing and (found.last_ok_at is None or found.last_ok_at < min(failing)):
        found.relay_failing_since = min(failing)


async def _waiting() -> int:
    rows = await db.fetch("SELECT COUNT(*) FROM outbox_message WHERE status IN ('pending', 'sending')")
    return rows[0][0]


@dataclass
class Beat:
    """What one worker process writes into its heartbeat row."""

    name: str = field(default_factory=process_name)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    failing_since: datetime | None = None

    async def write(self, dispatcher: Any) -> None:
        """Upsert this worker's row from its dispatcher (sent, refused, failed connections, the relay's last word).

        A restarted process with the same name (a container's pid 1) keeps the relay facts it has not yet met.
        """
        now = datetime.now(UTC)
        ok_at, error_at = dispatcher.last_ok_at, dispatcher.last_error_at
        if error_at and (ok_at is None or ok_at < error_at):
            self.failing_since = self.failing_since or error_at
        else:
            self.failing_since = None
        values: dict[str, Any] = {
            "started_at": self.started_at,
            "last_loop_at": now,
            "sent": dispatcher.sent,
            "refused": dispatcher.refused,
            "connection_failures": dispatcher.connection_failures,
            "smtp_failing_since": self.failing_since,
        }
        if ok_at:
            values["last_smtp_ok_at"] = ok_at
        if error_at:
            values["last_smtp_error"], values["last_smtp_error_at"] = dispatcher.last_error, error_at
        updated = await WorkerHeartbeat.filter(name=self.name).update(**values)
        if not updated:
            await WorkerHeartbeat.bulk_create([WorkerHeartbeat(name=self.name, **values)], ignore_conflicts=True)

    async def forget_the_long_gone(self) -> int:
        """Delete the heartbeats of workers that have not looped for a week; returns how many."""
        return await WorkerHeartbeat.filter(last_loop_at__lt=datetime.now(UTC) - FORGET_AFTER).delete()
