"""SQLite, in a long-running process: the ingest writes decided ahead run in a child process of their own
(pulse.sqlite_writer). These hold it to storing and answering what the same batches one after the other do, to
deciding again whenever anything else was written between a batch's decision and its write (chained or not), to
durable settings, and to losing and doubling nothing when the child is killed."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sqlite3
from collections import Counter

import pytest
from asgi_lifespan import LifespanManager
from tortoise.transactions import in_transaction

from pulse import db, rules, sqlite_engine, sqlite_writer, touchpoints
from pulse.app import create_app
from pulse.models import Contact, Team
from tests.conftest import ENGINE, event, make_settings
from tests.test_ingest_line import AGO, NOW, OPT_OUT_COUNTED, invitations_of_c20_and_c21, stored, two_batches

pytestmark = pytest.mark.skipif(ENGINE != "sqlite", reason="the writer process is SQLite's")


async def together(catalog, settings, batches: list[list[dict]]) -> list[list[dict]]:
    answers = await asyncio.gather(*(touchpoints.ingest(b, catalog, settings, NOW) for b in batches))
    return [[o.as_json() for o in a] for a in answers]


async def started() -> sqlite_engine.WriterProcess:
    writer = sqlite_engine.WRITER
    assert writer is not None
    assert await writer.started()
    return writer


async def test_batches_written_by_the_child_store_and_answer_what_one_after_the_other_would(
    databases, tmp_path, catalog, monkeypatch
):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    batches = list(two_batches())
    batches.append([event(n, external_id=f"T-{n}c", occurred_at=AGO, type="purchase") for n in (1, 8, 10)])

    monkeypatch.setattr(sqlite_engine, "WRITER_PROCESS", False)
    settings = make_settings(databases.fresh(tmp_path / "a"))
    async with LifespanManager(create_app(settings, catalog=catalog)):
        in_turn = [[o.as_json() for o in await touchpoints.ingest(b, catalog, settings, NOW)] for b in batches]
        rows_in_turn = await stored()
        assert sqlite_engine.WRITER.wrote == 0

    monkeypatch.setattr(sqlite_engine, "WRITER_PROCESS", True)
    settings = make_settings(databases.fresh(tmp_path / "b"))
    async with LifespanManager(create_app(settings, catalog=catalog)):
        writer = await started()
        # the child's connection makes a COMMIT as durable as the app's: synchronous=FULL on the write-ahead log
        assert (writer.child["journal_mode"], writer.child["synchronous"]) == ("wal", 2)
        # and its pipe holds a whole 1,000-event batch: the child does not wait for the event loop to send the rest
        pipe = writer._process.stdin.transport.get_extra_info("pipe")
        assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == sqlite_writer.PIPE_SIZE
        before = Counter(touchpoints.DECIDED)
        ahead = await together(catalog, settings, batches)
        # the first names a team not stored yet: Tortoise's transaction decides it and creates the team; the second
        # is decided from the child's counters after it, the third over the second, behind it in the child's queue
        assert touchpoints.DECIDED - before == Counter({"again": 1, "ahead": 2})
        assert writer.wrote == 2
        assert ahead == in_turn
        assert await stored() == rows_in_turn
        # and the cases the overlay is for did happen
        statuses = [(r["status"], r["reason"]) for r in ahead[1]]
        assert statuses[:3] == [("invited", None), ("duplicate", None), ("skipped", rules.FATIGUE)]


def write_on_decision(number: int, write) -> object:
    """_decide_ahead that runs `write` after its `number`-th decision: after the decision, before the write."""
    decide_ahead = touchpoints._decide_ahead
    calls = 0

    async def decide_then_something_else_writes(*args, **kwargs):
        nonlocal calls
        decided = await decide_ahead(*args, **kwargs)
        calls += 1
        if calls == number:
            await write()
        return decided

    return decide_then_something_else_writes


def opt_out(url: str, *, other_connection: bool, after: int = 0):
    """A write of C-20's opt-out, once the child has written `after` batches."""

    async def write() -> None:
        while sqlite_engine.WRITER.wrote < after:  # noqa: ASYNC110 (a counter of the writer's, no event to wait for)
            await asyncio.sleep(0.001)
        sql = "UPDATE contact SET opted_out_at = ? WHERE external_id = 'C-20'"
        if not other_connection:
            await db.execute(sql, [NOW.isoformat(" ")])
            return

        def other() -> None:
            connection = sqlite3.connect(url.removeprefix("sqlite://"), timeout=30, isolation_level=None)
            connection.execute(sql, [NOW.isoformat(" ")])
            connection.close()

        await asyncio.to_thread(other)  # waits for a COMMIT of the child's, as any other writer would

    return write


@pytest.mark.parametrize("other_connection", [False, True], ids=["through Tortoise", "another connection"])
@pytest.mark.parametrize("decision", [1, 2], ids=["from the child's counters", "chained"])
async def test_a_write_between_a_decision_and_the_childs_write_has_the_batch_decided_again(
    database_url, catalog, monkeypatch, other_connection, decision
):
    settings = make_settings(database_url)
    # chained, after the batch before was written: a write before that would have that batch decided again too
    write = opt_out(database_url, other_connection=other_connection, after=decision - 1)
    monkeypatch.setattr(touchpoints, "_decide_ahead", write_on_decision(decision, write))
    async with LifespanManager(create_app(settings, catalog=catalog)):
        writer = await started()
        await Team.create(slug="support-warsaw", name="Support Warsaw")  # a new team is decided in Tortoise's
        await Contact.create(external_id="C-20", email="person20@example.com", locale="pl", timezone="Europe/Warsaw")
        first = [event(n, occurred_at=AGO) for n in range(1, 4)]
        second = [event(20, occurred_at=AGO), event(21, occurred_at=AGO)]
        batches = [first, second] if decision == 2 else [second]
        before = Counter(touchpoints.DECIDED)
        answers = await asyncio.gather(*(touchpoints.ingest(b, catalog, settings, NOW) for b in batches))
        if decision == 2:
            assert touchpoints.DECIDED - before == Counter({"ahead": 1, "again": 1})
            assert [o.status for o in answers[0]] == ["invited"] * 3
        else:
            assert touchpoints.DECIDED - before == Counter({"again": 1})
        assert writer.wrote == decision - 1
        # decided ahead, C-20 was invited; decided again, the opt-out written in between counts
        assert [(o.status, o.reason) for o in answers[-1]] == [("skipped", rules.OPTED_OUT), ("invited", None)]
        assert await invitations_of_c20_and_c21() == OPT_OUT_COUNTED
        # the child is still there, and writes the next batch
        [outcome] = await touchpoints.ingest([event(30, occurred_at=AGO)], catalog, settings, NOW)
        assert outcome.status == "invited"
        assert writer.wrote == decision


async def test_a_batch_behind_one_written_through_tortoise_waits_for_it_then_the_child_writes_it(
    databases, tmp_path, catalog, monkeypatch
):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    batches = two_batches()
    monkeypatch.setattr(sqlite_engine, "WRITER_PROCESS", False)
    settings = make_settings(databases.fresh(tmp_path / "a"))
    async with LifespanManager(create_app(settings, catalog=catalog)):
        in_turn = [[o.as_json() for o in await touchpoints.ingest(b, catalog, settings, NOW)] for b in batches]
        rows_in_turn = await stored()
    monkeypatch.setattr(sqlite_engine, "WRITER_PROCESS", True)

    writer_process = db.writer_process
    calls = 0

    def not_for_the_first(*args):
        nonlocal calls
        calls += 1
        return None if calls == 1 else writer_process(*args)

    monkeypatch.setattr(db, "writer_process", not_for_the_first)
    settings = make_settings(databases.fresh(tmp_path / "b"))
    async with LifespanManager(create_app(settings, catalog=catalog)):
        writer = await started()
        before = Counter(touchpoints.DECIDED)
        answers = await together(catalog, settings, list(batches))
        assert touchpoints.DECIDED - before == Counter({"in turn": 1, "ahead": 1})
        assert writer.wrote == 1
        assert answers == in_turn
        assert await stored() == rows_in_turn


async def test_a_child_killed_while_it_writes_loses_and_doubles_nothing_and_another_starts(
    database_url, catalog, monkeypatch
):
    settings = make_settings(database_url, PULSE_QUIET_HOURS="off")
    monkeypatch.setattr(sqlite_engine.WriterProcess, "RESTART_AFTER", 0.2)
    batches = [
        [
            event(1000 * b + n, occurred_at=AGO, type="purchase" if n % 3 else "support_ticket_closed")
            for n in range(150)
        ]
        for b in range(8)
    ]
    async with LifespanManager(create_app(settings, catalog=catalog)):
        writer = await started()
        first = writer.generation
        await Team.create(slug="support-warsaw", name="Support Warsaw")

        async def kill_after_the_first_write() -> None:
            while writer.wrote < 1:  # noqa: ASYNC110 (a counter of the writer's, no event to wait for)
                await asyncio.sleep(0.001)
            os.kill(writer.child["pid"], signal.SIGKILL)  # batches are queued behind the one it writes

        killing = asyncio.create_task(kill_after_the_first_write())
        answers = await together(catalog, settings, batches)
        await killing
        assert writer.generation != first  # it noticed
        sent = {e["external_id"] for b in batches for e in b}
        statuses = Counter(r["status"] for a in answers for r in a)
        assert set(statuses) <= {"invited", "skipped", "duplicate"}, statuses
        # every event stored once; a batch whose COMMIT the child made before it died is found stored (duplicate)
        touchpoints_stored = await db.fetch("SELECT external_id FROM touchpoint")
        assert sorted(r[0] for r in touchpoints_stored) == sorted(sent)
        [[doubled]] = await db.fetch(
            "SELECT COUNT(*) FROM (SELECT touchpoint_id FROM invitation GROUP BY touchpoint_id HAVING COUNT(*) > 1)"
        )
        assert doubled == 0
        [[mailed_twice]] = await db.fetch(
            "SELECT COUNT(*) FROM (SELECT invitation_id FROM outbox_message GROUP BY invitation_id HAVING COUNT(*) > 1)"
        )
        assert mailed_twice == 0
        # each event answered "invited" has its one scheduled invitation; any other scheduled is of an event that a
        # batch the child wrote before it died says is stored already
        answered = {r["external_id"]: r["status"] for a in answers for r in a}
        scheduled = await db.fetch(
            "SELECT t.external_id FROM invitation i JOIN touchpoint t ON t.id = i.touchpoint_id"
            " WHERE i.status = 'scheduled'"
        )
        scheduled = {r[0] for r in scheduled}
        assert {e for e, status in answered.items() if status == "invited"} <= scheduled
        assert {answered[e] for e in scheduled} <= {"invited", "duplicate"}
        # another child starts when one is wanted again, and writes
        assert await writer.started()
        wrote = writer.wrote
        [outcome] = await touchpoints.ingest([event(99_999, occurred_at=AGO)], catalog, settings, NOW)
        assert outcome.status in ("invited", "skipped")
        assert writer.wrote == wrote + 1


async def test_a_child_that_cannot_write_leaves_the_batch_to_tortoise_which_says_why(database_url, catalog):
    settings = make_settings(database_url)
    async with LifespanManager(create_app(settings, catalog=catalog)):
        writer = await started()
        await Team.create(slug="support-warsaw", name="Support Warsaw")
        other = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
        other.execute("PRAGMA busy_timeout = 0")
        # a trigger that fails every insert of a touchpoint, whoever writes it
        other.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON touchpoint BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
        other.close()
        before = Counter(touchpoints.DECIDED)
        from tortoise.exceptions import IntegrityError, OperationalError

        with pytest.raises((IntegrityError, OperationalError), match="refused by a trigger"):
            await touchpoints.ingest([event(1, occurred_at=AGO)], catalog, settings, NOW)
        assert touchpoints.DECIDED - before == Counter({"again": 1})
        assert await db.fetch("SELECT COUNT(*) FROM touchpoint") == [(0,)]
        assert writer.wrote == 0


async def test_a_write_transaction_of_the_serving_process_waits_only_for_what_the_child_was_sent(database_url, catalog):
    settings = make_settings(database_url, PULSE_QUIET_HOURS="off")
    batches = [[event(1000 * b + n, occurred_at=AGO) for n in range(200)] for b in range(6)]
    async with LifespanManager(create_app(settings, catalog=catalog)):
        writer = await started()
        await Team.create(slug="support-warsaw", name="Support Warsaw")
        seen: list[int] = []

        async def a_write_between() -> None:
            while writer.wrote < 1:  # noqa: ASYNC110 (a counter of the writer's, no event to wait for)
                await asyncio.sleep(0.001)
            async with in_transaction():
                seen.append(writer._writes)  # sent to the child and not answered: none, it does not poll for the lock
                await Contact.create(external_id="between", email="between@example.com")
                seen.append(writer.wrote)

        before = Counter(touchpoints.DECIDED)
        answers, _ = await asyncio.gather(together(catalog, settings, batches), a_write_between())
        in_flight, wrote_before = seen
        assert in_flight == 0
        # the batches that came meanwhile waited for the transaction, then were decided from the state it left
        # and written by the child
        assert writer.wrote > wrote_before
        decided = touchpoints.DECIDED - before
        assert decided["ahead"] == writer.wrote and decided.total() == len(batches)
        assert {r["status"] for a in answers for r in a} == {"invited"}
        assert await db.fetch("SELECT COUNT(*) FROM touchpoint") == [(1200,)]
        assert await db.fetch("SELECT COUNT(*) FROM contact WHERE external_id = 'between'") == [(1,)]
