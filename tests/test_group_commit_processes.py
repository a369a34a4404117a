"""The group commit is per process: with several processes, two batches may take the same rows in opposite
orders (answers to two surveys update their day's rollups). The database then aborts one job of one batch; that
job runs again in the next batch instead of failing, so both processes' writers acknowledge every write."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date

from pulse import rollups
from pulse.models import DailyRollup
from pulse.writer import GroupCommit
from tests.processes import side_by_side

DAY = date(2026, 1, 5)


def one_answer(survey: str) -> tuple:
    return (DAY, survey, "q", "all", "", 1, *([0] * 10))


async def test_two_processes_batches_taking_rows_in_opposite_orders_both_commit_every_write(app, settings):
    took = {"csat": asyncio.Event(), "nps": asyncio.Event()}

    async def take(first: str, then: str) -> None:
        """A job that adds to `first`, then waits a moment for the other batch to take `then`'s row."""
        await rollups.upsert([one_answer(first)])
        took[first].set()
        with contextlib.suppress(TimeoutError):  # on SQLite the other batch waits for this one to commit
            async with asyncio.timeout(1):
                await took[then].wait()

    def process(first: str, then: str):
        async def run() -> list:
            writer = GroupCommit()
            async with writer.running():  # both jobs queued before the loop runs: one batch
                return await asyncio.gather(
                    writer.run(lambda: take(first, then)),
                    writer.run(lambda: rollups.upsert([one_answer(then)])),
                    return_exceptions=True,
                )

        return run

    outcomes = await side_by_side(settings.database_url, process("csat", "nps"), process("nps", "csat"))
    assert outcomes == [[None, None], [None, None]]
    assert sorted(await DailyRollup.filter(day=DAY).values_list("survey_id", "c0")) == [("csat", 2), ("nps", 2)]
