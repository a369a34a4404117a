"""Group commit: concurrent writes share one transaction and one commit (one fsync instead of many).

Each job runs in its own savepoint, so one failing job rolls back alone; every caller gets its result only
after the shared COMMIT, so an acknowledged write is still durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tortoise.transactions import in_transaction

from pulse import storage

log = logging.getLogger("pulse.writer")

Job = Callable[[], Awaitable[Any]]
MAX_BATCH = 200


class GroupCommit:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    async def run(self, job: Job) -> Any:
        """Run `job` in the next shared transaction; return its result once that transaction committed."""
        if self._task is None:  # not started (a command-line use): run it in a transaction of its own
            async with in_transaction():
                return await job()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((job, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            outcomes: list[tuple[asyncio.Future, Any, BaseException | None]] = []
            try:
                async with in_transaction():
                    for job, future in batch:
                        try:
                            async with in_transaction():  # a savepoint per job
                                outcomes.append((future, await job(), None))
                        except Exception as error:  # the job's own failure, reported to its caller only
                            outcomes.append((future, None, error))
            except Exception as error:  # the commit itself failed: nothing of this batch is stored
                if storage.fault(error) is None:  # a full disk or a lost database is told by each caller's 503
                    log.exception("group commit of %d writes failed", len(batch))
                outcomes = [(future, None, error) for _, future in batch]
            for future, result, error in outcomes:
                if future.done():
                    continue
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)

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
