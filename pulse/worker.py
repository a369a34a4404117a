"""The background loops: due invitations -> outbox -> SMTP, expiry. Run inside `pulse serve` or alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from pulse import engagement, followups, responses, webhooks
from pulse.catalog import Catalog
from pulse.models import Invitation
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from pulse.settings import Settings

log = logging.getLogger("pulse.worker")

Step = Callable[[], Awaitable[int]]
SHUTDOWN_GRACE = 3.0  # seconds a step may take to finish after a stop; then it is cancelled (claims released)


async def expire_invitations() -> int:
    """Sent invitations whose link has expired are closed; returns how many."""
    return await Invitation.filter(status="sent", expires_at__lt=datetime.now(UTC)).update(status="expired")


def steps(settings: Settings, catalog: Catalog) -> dict[str, Step]:
    """Each loop's one step: it does a bounded amount of work and returns how much it did."""
    dispatcher = Dispatcher(settings, catalog, environment())
    return {
        "outbox": dispatcher.step,
        "confirm_answers": lambda: responses.confirm_due(catalog, settings),
        "escalate_cases": lambda: followups.escalate_overdue(settings),
        "webhooks": lambda: webhooks.deliver_due(settings),
        "engagement": lambda: engagement.run_schedule(catalog, settings),
        "expire_invitations": expire_invitations,
    }


async def _loop(name: str, step: Step, interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            done = await step()
        except Exception:  # a failing step must not kill the loop: log, wait, try again
            log.exception("worker step %s failed", name)
            done = 0
        if done:
            await asyncio.sleep(0)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


@contextlib.asynccontextmanager
async def running(settings: Settings, catalog: Catalog, *, enabled: bool = True) -> AsyncIterator[None]:
    """Run every loop as a task while the block runs; stop them cleanly after it."""
    if not enabled:
        yield
        return
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_loop(name, step, settings.worker_interval, stop), name=f"pulse-{name}")
        for name, step in steps(settings, catalog).items()
    ]
    log.info("worker started: %s", ", ".join(t.get_name() for t in tasks))
    try:
        yield
    finally:
        stop.set()
        _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        for task in late:  # e.g. waiting on a relay that hangs: do not hold the shutdown for its timeout
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("worker stopped")
