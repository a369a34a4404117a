"""The background loops: due invitations -> outbox -> SMTP, expiry, the daily retention run. Run inside
`pulse serve` or alone.

A loop whose step fails keeps going: it waits longer after each failure in a row (doubling, at most a minute),
and the log tells the story once — the first failure, a summary every five minutes while it lasts, and the count
when it clears — however many loops fail the same way. After each outbox step the worker writes its heartbeat
(pulse.health), which /healthz and the Delivery page read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiosmtplib

from pulse import engagement, followups, health, mail, responses, retention, storage, webhooks
from pulse.catalog import Catalog
from pulse.models import Invitation
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from pulse.settings import Settings

log = logging.getLogger("pulse.worker")

Step = Callable[[], Awaitable[int]]
SHUTDOWN_GRACE = 3.0  # seconds a step may take to finish after a stop; then it is cancelled (claims released)
BACKOFF_CAP = 60.0  # seconds at most between two tries of a loop whose step keeps failing


async def expire_invitations() -> int:
    """Sent invitations whose link has expired are closed; returns how many."""
    return await Invitation.filter(status="sent", expires_at__lt=datetime.now(UTC)).update(status="expired")


def steps(settings: Settings, catalog: Catalog, beat: health.Beat | None = None) -> dict[str, Step]:
    """Each loop's one step: it does a bounded amount of work and returns how much it did."""
    dispatcher = Dispatcher(settings, catalog, environment())

    async def outbox() -> int:
        done = await dispatcher.step()
        if beat is not None:  # this loop finished: say so, with what the relay said
            await beat.write(dispatcher)
        return done

    return {
        "outbox": outbox,
        "confirm_answers": lambda: responses.confirm_due(catalog, settings),
        "escalate_cases": lambda: followups.escalate_overdue(settings),
        "webhooks": lambda: webhooks.deliver_due(settings),
        "engagement": lambda: engagement.run_schedule(catalog, settings),
        "expire_invitations": expire_invitations,
        "retention": lambda: retention.daily(settings),  # once a day, by one worker of all (a claimed row)
    }


async def _loop(name: str, step: Step, settings: Settings, stop: asyncio.Event, failures: storage.Repeats) -> None:
    interval = float(settings.worker_interval)
    streak = 0
    while not stop.is_set():
        delay = interval
        try:
            done = await step()
        except Exception as error:  # a failing step must not kill the loop: log once, back off, try again
            streak += 1
            delay = min(interval * 2 ** (streak - 1), max(interval, BACKOFF_CAP))
            _failed(name, error, settings, failures)
            done = 0
        else:
            if streak:
                failures.succeeded(name)
            streak = 0
        if done:
            await asyncio.sleep(0)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


def _failed(name: str, error: Exception, settings: Settings, failures: storage.Repeats) -> None:
    """Log the first of a run of identical failures; a database fault is one line, a bug gets its traceback."""
    fault = storage.fault(error, settings.database_url)
    if fault is not None:  # every loop meets the same fault: one run for all of them
        key, text = f"database {fault.kind}", f"database {fault.kind.replace('_', '-')}: {fault.detail}"
    else:
        key = text = f"{type(error).__name__}: {error}"
    if not failures.failed(name, key, text):
        return
    message = "%s failing: %s; the loops back off (up to %.0f s) and the same failure is only counted"
    if fault is not None:
        log.warning(message, name, text, BACKOFF_CAP)
    else:
        log.exception(message, name, text, BACKOFF_CAP)


async def check_relay(settings: Settings) -> None:
    """At start-up, say at once and in one line when the SMTP relay cannot be reached (the outbox would only
    find out when the first e-mail is due)."""
    client = mail.smtp_client(settings)
    try:
        await asyncio.wait_for(client.connect(), settings.smtp_timeout)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        client.close()
        log.error(
            "PULSE_SMTP_HOST/PULSE_SMTP_PORT: cannot reach the SMTP relay at %s:%s (%s) — e-mails wait until it "
            "answers; start it, or correct the settings.",
            settings.smtp_host,
            settings.smtp_port,
            error or type(error).__name__,
        )
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


@contextlib.asynccontextmanager
async def running(settings: Settings, catalog: Catalog, *, enabled: bool = True) -> AsyncIterator[None]:
    """Run every loop as a task while the block runs; stop them cleanly after it."""
    if not enabled:
        yield
        return
    stop = asyncio.Event()
    beat = health.Beat()
    try:
        await beat.forget_the_long_gone()
    except Exception as error:  # housekeeping only: the loops report a database that is away
        log.debug("could not delete old heartbeats: %s", error)
    failures = storage.Repeats(log)
    tasks = [
        asyncio.create_task(_loop(name, step, settings, stop, failures), name=f"pulse-{name}")
        for name, step in steps(settings, catalog, beat).items()
    ]
    tasks.append(asyncio.create_task(check_relay(settings), name="pulse-check-relay"))
    log.info("worker started: %s", ", ".join(t.get_name() for t in tasks))
    try:
        yield
    finally:
        stop.set()
        _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        # e.g. waiting on a relay or a database connection that hangs: do not hold the shutdown for its timeout.
        # A cancelled query may itself wait on the database (asyncpg cancels it over a new connection): cancel
        # again, and after that leave what still hangs rather than hang with it.
        for _ in range(3):
            if not late:
                break
            for task in late:
                task.cancel()
            _, late = await asyncio.wait(late, timeout=0.5)
        if late:
            log.warning("worker stopped, leaving %s hanging", ", ".join(t.get_name() for t in late))
        else:
            log.info("worker stopped")
