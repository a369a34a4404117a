"""The group commit: jobs queued together share one transaction, yet a job that fails leaves no trace and fails
only its own caller; the others' writes are committed and acknowledged."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from pulse import db, rollups
from pulse.models import DailyRollup
from pulse.writer import GroupCommit

DAY = date(2026, 1, 5)


def one_answer(survey: str) -> tuple:
    return (DAY, survey, "q", "all", "", 1, *([0] * 10))


class Refused(Exception):
    pass


async def _writes_then_fails() -> None:
    await rollups.upsert([one_answer("ces")])
    raise Refused("this job's own failure")


async def test_a_failing_job_rolls_back_alone_and_fails_only_its_caller(database_url):
    async with db.connected(database_url):
        writer = GroupCommit()
        async with writer.running():
            outcomes = await asyncio.gather(  # queued before the loop runs: one batch
                writer.run(lambda: rollups.upsert([one_answer("csat")])),
                writer.run(_writes_then_fails),
                writer.run(lambda: rollups.upsert([one_answer("nps")])),
                return_exceptions=True,
            )
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], Refused)
        stored = sorted(await DailyRollup.filter(day=DAY).values_list("survey_id", "c0"))
        assert stored == [("csat", 1), ("nps", 1)]


async def test_every_job_of_a_batch_is_committed_once(database_url):
    async with db.connected(database_url):
        writer = GroupCommit()
        async with writer.running():
            await asyncio.gather(*(writer.run(lambda: rollups.upsert([one_answer("csat")])) for _ in range(50)))
        assert await DailyRollup.filter(day=DAY).values_list("c0", flat=True) == [50]


@pytest.mark.parametrize("failing", [0, 1, 2])
async def test_results_reach_their_own_callers(database_url, failing):
    async def job(number: int) -> int:
        await rollups.upsert([one_answer("csat")])
        if number == failing:
            raise Refused(str(number))
        return number * 10

    async with db.connected(database_url):
        writer = GroupCommit()
        async with writer.running():
            outcomes = await asyncio.gather(*(writer.run(lambda n=n: job(n)) for n in range(3)), return_exceptions=True)
    for number, outcome in enumerate(outcomes):
        if number == failing:
            assert isinstance(outcome, Refused) and str(outcome) == str(number)
        else:
            assert outcome == number * 10


def _upsert_in_thread(connection, survey: str) -> str:
    """What `rollups.upsert([one_answer(survey)])` does, as a statement on the sqlite3 connection."""
    connection.execute(
        "INSERT INTO daily_rollup (day, survey_id, question_id, dimension, value, c0, c1, c2, c3, c4, c5, c6, c7,"
        " c8, c9, c10) VALUES (?, ?, 'q', 'all', '', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)",
        (DAY, survey),
    )
    return survey


def _fails_in_thread(connection) -> None:
    raise Refused("this job's own failure, in the database's thread")


async def test_a_batch_of_statement_jobs_commits_in_one_call_and_a_failure_falls_back(database_url):
    async def upsert(survey: str) -> str:
        await rollups.upsert([one_answer(survey)])
        return survey

    async with db.connected(database_url):
        writer = GroupCommit()
        async with writer.running():
            together = await asyncio.gather(
                *(writer.run(lambda s=s: upsert(s), in_thread=lambda c, s=s: _upsert_in_thread(c, s)) for s in ("nps",))
            )
            sqlite = db.dialect() == "sqlite"
            assert together == ["nps"] and writer.in_thread_batches == (1 if sqlite else 0)
            outcomes = await asyncio.gather(  # one batch: the failing job's statements roll back the whole call
                writer.run(lambda: upsert("csat"), in_thread=lambda c: _upsert_in_thread(c, "csat")),
                writer.run(_writes_then_fails, in_thread=_fails_in_thread),
                writer.run(lambda: upsert("ces"), in_thread=lambda c: _upsert_in_thread(c, "ces")),
                return_exceptions=True,
            )
        # then the batch ran again through each job's coroutine, each in its own savepoint
        assert outcomes[0] == "csat" and outcomes[2] == "ces" and isinstance(outcomes[1], Refused)
        assert writer.in_thread_batches == (1 if sqlite else 0)
        stored = sorted(await DailyRollup.filter(day=DAY).values_list("survey_id", "c0"))
        assert stored == [("ces", 1), ("csat", 1), ("nps", 1)]
