"""Group commit: concurrent writes share one transaction and one commit (one fsync instead of many).

Every caller gets its result only after the shared COMMIT, so an acknowledged write is still durable. A batch
runs first with no savepoints; when one of its jobs fails, the whole batch is rolled back and run again with each
job in its own savepoint, so the failing job rolls back alone and fails only its own caller. Jobs must therefore
be safe to run twice from the same database state (they are: they read what they change inside the batch).

On SQLite, a batch whose jobs all come with a plain function of the sqlite3 connection (the one-click answer does)
runs as one call in aiosqlite's thread: BEGIN IMMEDIATE, every job's statements, COMMIT, one hop there and back
instead of several per job. If any of it fails, nothing of it is committed and the batch runs again as above,
through each job's coroutine.

Each process has its own group commit; several processes' batches are ordinary concurrent transactions. Two
batches may take the same rows in opposite orders (answers to two surveys update their day's rollups), and
PostgreSQL then aborts one statement of one of them (a deadlock). Only that job's savepoint is rolled back: the
job runs again in the next batch, after this one committed and let go of its rows, instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from tortoise.transactions import in_transaction

from pulse import db, storage
from pulse.sqlite_engine import writer_turn

log = logging.getLogger("pulse.writer")

Job = Callable[[], Awaitable[Any]]
InThread = Callable[[sqlite3.Connection], Any]  # the same job as statements on the raw SQLite connection
MAX_BATCH = 200
MAX_TRIES = 4  # runs of a job that keeps losing a deadlock before its caller gets the error


def lost_a_race(error: BaseException) -> bool:
    """A deadlock or serialization failure: the same job may succeed once the other transaction ended."""
    while error is not None:
        if isinstance(error, asyncpg.exceptions.TransactionRollbackError):
            return True
        error = error.__cause__ or error.__context__
    return False


class GroupCommit:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future, int, InThread | None]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.in_thread_batches = 0  # batches committed in one call in SQLite's thread (the tests look)

    async def run(self, job: Job, in_thread: InThread | None = None) -> Any:
        """Run `job` in the next shared transaction; return its result once that transaction committed.
        `in_thread`, when given, does what `job` does, as statements on the sqlite3 connection, and returns the
        same result; a batch of such jobs on SQLite runs in one call in the database's thread."""
        if self._task is None:  # not started (a command-line use): run it in a transaction of its own
            async with in_transaction():
                return await job()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((job, future, 1, in_thread))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            outcomes, again = None, []
            if all(item[3] is not None for item in batch) and (client := db.thread_client()) is not None:
                outcomes = await self._in_thread(client, batch)
            else:
                outcomes, again = await self._together(batch)
            if outcomes is None:  # a job failed: run the batch again with each job in its own savepoint
                outcomes, again = await self._one_by_one(batch)
            for item in again:  # after the commit: the rows the other transaction waited for are free now
                self._queue.put_nowait(item)
            for future, result, error in outcomes:
                if future.done():
                    continue
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)

    async def _in_thread(self, client: Any, batch: list) -> list | None:
        """Every job's statements in one transaction, in one call in SQLite's thread; None when any failed, and
        then nothing of the batch was committed."""
        functions = [item[3] for item in batch]

        def run_all(connection: sqlite3.Connection) -> list:
            if connection.in_transaction:  # left open by a COMMIT that failed: never commit it now
                connection.rollback()
            connection.execute("BEGIN IMMEDIATE")
            try:
                results = [function(connection) for function in functions]
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        connection.rollback()
                raise
            return results

        try:
            async with writer_turn(client.filename):
                results = await client.run_in_thread(run_all)
        except Exception:
            return None
        self.in_thread_batches += 1
        return [(future, result, None) for (_, future, _, _), result in zip(batch, results, strict=True)]

    async def _together(self, batch: list) -> tuple[list | None, list]:
        """The common case: every job in one transaction with no savepoints (two fewer statements a job); None
        when any job failed, and then nothing of the batch was committed."""
        outcomes = []
        try:
            async with in_transaction():
                for job, future, _, _ in batch:
                    outcomes.append((future, await job(), None))
        except Exception:
            return None, []
        return outcomes, []

    async def _one_by_one(self, batch: list) -> tuple[list, list]:
        """Each job in a savepoint of the shared transaction: a failing job rolls back alone and fails only its
        caller; one that lost a race to another process runs again in the next batch."""
        outcomes: list[tuple[asyncio.Future, Any, BaseException | None]] = []
        again: list[tuple[Job, asyncio.Future, int, InThread | None]] = []
        try:
            async with in_transaction():
                for job, future, tries, in_thread in batch:
                    try:
                        async with in_transaction():  # a savepoint per job
                            outcomes.append((future, await job(), None))
                    except Exception as error:  # the job's own failure, reported to its caller only
                        if lost_a_race(error) and tries < MAX_TRIES:
                            again.append((job, future, tries + 1, in_thread))
                        else:
                            outcomes.append((future, None, error))
        except Exception as error:  # the commit itself failed: nothing of this batch is stored
            if storage.fault(error) is None:  # a full disk or a lost database is told by each caller's 503
                log.exception("group commit of %d writes failed", len(batch))
            return [(future, None, error) for _, future, _, _ in batch], []
        return outcomes, again

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[GroupCommit]:
        self._task = asyncio.create_task(self._loop(), name="pulse-group-commit")
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
