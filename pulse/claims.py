"""Claims on queue rows (e-mails in `outbox_message`, events in `webhook_delivery`) that many workers share.

A worker claims due rows with one conditional UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL): each row moves from
`pending` to `sending` for exactly one worker, which writes its name into `claimed_by`. While it works, a
heartbeat keeps `claimed_at` fresh, so a claim goes stale only when its worker has stopped (killed, frozen, cut
off from the database) — then, after `stale_after`, another worker may take the row over. A worker records a result
only on rows it still holds; a row it lost is logged, never overwritten. Rows it claimed but did not start are
released at once when it stops early, so they wait for nobody's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from pulse import db

log = logging.getLogger("pulse.claims")

TABLES = ("outbox_message", "webhook_delivery")


def _check(table: str) -> None:
    if table not in TABLES:  # table names are never user input; this keeps it so
        raise ValueError(f"not a queue table: {table}")


async def claim(table: str, batch: int, worker: str, stale_after: timedelta, now: datetime | None = None) -> list[int]:
    """Move up to `batch` due rows (or rows whose claim went stale) to `sending` for this worker; their ids."""
    _check(table)
    now = now or datetime.now(UTC)
    stale = now - stale_after
    due = "(status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND claimed_at < ?)"
    if db.dialect() == "postgres":
        sql = (
            f"UPDATE {table} SET status = 'sending', claimed_at = ?, claimed_by = ?, attempts = attempts + 1 "
            f"WHERE id IN (SELECT id FROM {table} WHERE {due} ORDER BY next_attempt_at, id LIMIT ? "
            "FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        params: list = [now, worker, now, stale, batch]
    else:
        # one statement, so SQLite runs it atomically; the outer WHERE re-checks the status
        sql = (
            f"UPDATE {table} SET status = 'sending', claimed_at = ?, claimed_by = ?, attempts = attempts + 1 "
            f"WHERE id IN (SELECT id FROM {table} WHERE {due} ORDER BY next_attempt_at, id LIMIT ?) AND ({due}) "
            "RETURNING id"
        )
        params = [now, worker, now, stale, batch, now, stale]  # UTC ISO text: text order is time order
    rows = await db.fetch(sql, params)
    return sorted(row[0] for row in rows)


async def extend(table: str, worker: str) -> int:
    """The heartbeat: every row this worker holds stays its own; returns how many it holds."""
    _check(table)
    sql = f"UPDATE {table} SET claimed_at = ? WHERE status = 'sending' AND claimed_by = ?"
    return await db.execute(sql, [datetime.now(UTC), worker])


async def release(
    table: str, worker: str, ids: list[int], delay: timedelta = timedelta(0), error: str | None = None
) -> int:
    """Give back rows this worker claimed but did not finish (stopping early): due again after `delay`, with
    the attempt not counted; `error` says why, where it was the relay's fault."""
    _check(table)
    if not ids:
        return 0
    sql = (
        f"UPDATE {table} SET status = 'pending', claimed_by = NULL, claimed_at = NULL, attempts = attempts - 1, "
        f"next_attempt_at = ?, last_error = COALESCE(?, last_error) WHERE status = 'sending' AND claimed_by = ? "
        f"AND id IN ({db.marks(len(ids))})"
    )
    return await db.execute(sql, [datetime.now(UTC) + delay, error, worker, *ids])


async def release_all(table: str, worker: str) -> int:
    """Give back every row this worker still holds (between steps, when nothing of its is being sent)."""
    _check(table)
    sql = (
        f"UPDATE {table} SET status = 'pending', claimed_by = NULL, claimed_at = NULL, attempts = attempts - 1 "
        "WHERE status = 'sending' AND claimed_by = ?"
    )
    return await db.execute(sql, [worker])


@contextlib.asynccontextmanager
async def heartbeat(table: str, worker: str, every: float) -> AsyncIterator[None]:
    """Keep this worker's claims fresh while the block runs, whatever it waits on."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await extend(table, worker)
            except Exception as error:  # the database is away: the claims may go stale; recording will tell
                log.warning("could not extend the claims of %s on %s: %s", worker, table, error)

    task = asyncio.create_task(beat(), name=f"heartbeat-{table}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
