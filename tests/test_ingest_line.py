"""SQLite: a batch that arrives while another writes is decided meanwhile, from the last committed state with that
batch's writes laid over it, and written in its turn only if nothing else was written in between
(pulse.touchpoints._store_in_line). These hold it to storing and answering what the same batches one after the
other do, and to deciding again when anything else was written."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from asgi_lifespan import LifespanManager

from pulse import db, rules, sqlite_engine, touchpoints
from pulse.app import create_app
from pulse.models import Contact
from tests.conftest import ENGINE, event, make_settings

pytestmark = pytest.mark.skipif(ENGINE != "sqlite", reason="the line is SQLite's: PostgreSQL writes concurrently")


@pytest.fixture(autouse=True)
def writes_in_this_process(monkeypatch):
    """These hold the line through Tortoise's connection; test_ingest_writer_process holds the child's."""
    monkeypatch.setattr(sqlite_engine, "WRITER_PROCESS", False)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
AGO = (NOW - timedelta(days=2)).isoformat()  # every survey's delay is over: sent now


def two_batches() -> tuple[list[dict], list[dict]]:
    purchase = next(f"P-{n}" for n in range(100) if rules.sample("nps", "C-1", f"api:P-{n}") < 0.5)
    first = [event(n, occurred_at=AGO) for n in range(1, 7)]
    first.append(event(7, occurred_at=AGO, team="a-team-never-seen"))
    second = [
        event(1, external_id=purchase, type="purchase", occurred_at=AGO),  # supersedes C-1's survey of the first
        event(2, occurred_at=AGO),  # a replay of the first batch's T-2
        event(3, external_id="T-3b", occurred_at=AGO),  # C-3 again: fatigue, from the first batch's invitation
        event(4, external_id="T-4b", occurred_at=AGO, contact_email="new4@example.com", contact_locale="it"),
        event(7, external_id="T-7b", occurred_at=AGO, team="a-team-never-seen", contact_name="Seven"),
        event(8, occurred_at=AGO, team="a-team-never-seen"),  # somebody new, in the team the first batch made
        event(9, occurred_at=AGO, type="purchase"),
    ]
    return first, second


async def stored() -> dict[str, list[tuple]]:
    queries = {
        "contact": "SELECT id, external_id, email, name, locale, timezone, attributes, first_purchase_at,"
        " opted_out_at, bounced_at FROM contact ORDER BY id",
        "team": "SELECT id, slug FROM team ORDER BY id",
        "touchpoint": "SELECT id, source, external_id, type, occurred_at, contact_id, team_id, agent, channel, stage,"
        " attributes, received_at FROM touchpoint ORDER BY id",
        "invitation": "SELECT id, survey_id, contact_id, touchpoint_id, locale, status, skip_reason, send_at,"
        " created_at FROM invitation ORDER BY id",
        # the Message-ID is random by design
        "outbox": "SELECT kind, invitation_id, to_email, locale, payload, status, attempts, next_attempt_at"
        " FROM outbox_message ORDER BY id",
    }
    return {name: await db.fetch(sql) for name, sql in queries.items()}


async def run(url: str, catalog, batches: tuple[list[dict], list[dict]], *, together: bool):
    settings = make_settings(url)
    async with LifespanManager(create_app(settings, catalog=catalog)):
        before = Counter(touchpoints.DECIDED)
        if together:
            answers = await asyncio.gather(*(touchpoints.ingest(b, catalog, settings, NOW) for b in batches))
        else:
            answers = [await touchpoints.ingest(b, catalog, settings, NOW) for b in batches]
        decided = touchpoints.DECIDED - before
        return [[o.as_json() for o in a] for a in answers], await stored(), decided


async def test_a_batch_decided_while_the_one_before_writes_stores_and_answers_what_one_after_the_other_would(
    databases, tmp_path, catalog
):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    batches = two_batches()
    in_turn, rows_in_turn, how = await run(databases.fresh(tmp_path / "a"), catalog, batches, together=False)
    assert how == Counter({"in turn": 2})
    ahead, rows_ahead, how = await run(databases.fresh(tmp_path / "b"), catalog, batches, together=True)
    assert how == Counter({"in turn": 1, "ahead": 1})  # the second was decided while the first wrote
    assert ahead == in_turn
    assert rows_ahead == rows_in_turn
    # and the cases the overlay is for did happen
    statuses = [(r["status"], r["reason"]) for r in ahead[1]]
    assert statuses[:3] == [("invited", None), ("duplicate", None), ("skipped", rules.FATIGUE)]
    assert ("skipped", rules.SUPERSEDED) in {(r[5], r[6]) for r in rows_ahead["invitation"]}
    assert ("new4@example.com", "it") in {(r[2], r[4]) for r in rows_ahead["contact"]}


# C-20 opted out between the decision and the write, C-21 did not: C-20's invitation is skipped with no e-mail
OPT_OUT_COUNTED = [("C-20", "skipped", rules.OPTED_OUT, 0), ("C-21", "scheduled", None, 1)]


async def invitations_of_c20_and_c21() -> list[tuple]:
    """(contact, status, skip reason, e-mails) of each invitation of C-20 and C-21, in order."""
    rows = await db.fetch(
        "SELECT c.external_id, i.status, i.skip_reason, COUNT(m.id) FROM invitation i"
        " JOIN contact c ON c.id = i.contact_id LEFT JOIN outbox_message m ON m.invitation_id = i.id"
        " GROUP BY i.id ORDER BY i.id"
    )
    return [r for r in rows if r[0] in ("C-20", "C-21")]


def opt_out_in_the_same_connection() -> object:
    async def write(url: str) -> None:
        await db.execute("UPDATE contact SET opted_out_at = ? WHERE external_id = 'C-20'", [NOW.isoformat(" ")])

    return write


def opt_out_in_another_connection() -> object:
    async def write(url: str) -> None:
        def other() -> None:
            connection = sqlite3.connect(url.removeprefix("sqlite://"), timeout=30, isolation_level=None)
            connection.execute("UPDATE contact SET opted_out_at = ? WHERE external_id = 'C-20'", [NOW.isoformat(" ")])
            connection.close()

        await asyncio.to_thread(other)  # waits for the first batch's COMMIT, as any other writer would

    return write


@pytest.mark.parametrize("writer", [opt_out_in_the_same_connection, opt_out_in_another_connection])
async def test_a_write_between_the_batch_before_and_its_turn_has_the_batch_decided_again(
    database_url, catalog, monkeypatch, writer
):
    settings = make_settings(database_url)
    write = writer()
    decide_ahead = touchpoints._decide_ahead

    async def decide_then_something_else_writes(*args, **kwargs):
        decided = await decide_ahead(*args, **kwargs)
        await write(database_url)  # after the decision, before its turn
        return decided

    monkeypatch.setattr(touchpoints, "_decide_ahead", decide_then_something_else_writes)
    async with LifespanManager(create_app(settings, catalog=catalog)):
        await Contact.create(external_id="C-20", email="person20@example.com", locale="pl", timezone="Europe/Warsaw")
        before = Counter(touchpoints.DECIDED)
        first, second = await asyncio.gather(
            touchpoints.ingest([event(n, occurred_at=AGO) for n in range(1, 4)], catalog, settings, NOW),
            touchpoints.ingest([event(20, occurred_at=AGO), event(21, occurred_at=AGO)], catalog, settings, NOW),
        )
        assert touchpoints.DECIDED - before == Counter({"in turn": 1, "again": 1})
        # decided ahead, C-20 was invited; decided again, the opt-out written in between counts
        assert [(o.status, o.reason) for o in second] == [("skipped", rules.OPTED_OUT), ("invited", None)]
        assert [o.status for o in first] == ["invited"] * 3
        assert await invitations_of_c20_and_c21() == OPT_OUT_COUNTED


async def test_when_the_batch_before_fails_the_next_is_decided_again_and_stored(database_url, catalog, monkeypatch):
    settings = make_settings(database_url)
    writes = db.run_sqlite_writes
    calls = 0

    async def the_first_fails(statements, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the disk went away")
        return await writes(statements, **kwargs)

    monkeypatch.setattr(db, "run_sqlite_writes", the_first_fails)
    async with LifespanManager(create_app(settings, catalog=catalog)):
        before = Counter(touchpoints.DECIDED)
        first, second = await asyncio.gather(
            touchpoints.ingest([event(1, occurred_at=AGO), event(2, occurred_at=AGO)], catalog, settings, NOW),
            # C-1 again: against the first batch's announced writes, a fatigue skip; nothing of it was stored
            touchpoints.ingest([event(1, external_id="T-1b", occurred_at=AGO)], catalog, settings, NOW),
            return_exceptions=True,
        )
        assert isinstance(first, RuntimeError)
        assert touchpoints.DECIDED - before == Counter({"in turn": 1, "again": 1})
        assert [(o.status, o.reason) for o in second] == [("invited", None)]
        assert await db.fetch("SELECT external_id FROM touchpoint") == [("T-1b",)]
        assert await db.fetch("SELECT external_id FROM contact") == [("C-1",)]


async def test_a_write_that_fails_half_way_leaves_nothing_and_the_writer_usable(app):
    from tortoise.exceptions import OperationalError

    statements = [
        ("INSERT INTO team (slug, name, created_at) VALUES ('kept-out', 'Kept out', ?)", [NOW.isoformat(" ")]),
        ("INSERT INTO no_such_table VALUES (1)", []),
    ]
    result = await db.run_sqlite_transaction(statements, lambda: True, lambda: None)
    assert result is None  # `expect` did not hold: nothing ran
    assert await db.fetch("SELECT slug FROM team") == []
    now = await db.run_sqlite_transaction(statements[:1], lambda: True, lambda: None)
    assert now is None
    # with what the counters say now, the statements run, and the second fails: the first is rolled back with it
    state = (await db.fetch("PRAGMA data_version"))[0][0]
    with pytest.raises(OperationalError, match="no_such_table"):
        await db.run_sqlite_transaction(statements, lambda: True, lambda: (changes(), state))
    assert await db.fetch("SELECT slug FROM team") == []
    settings = make_settings(app.state.settings.database_url)
    [outcome] = await touchpoints.ingest([event(1, occurred_at=AGO)], app.state.catalog, settings, NOW)
    assert outcome.status == "invited"


def changes() -> int:
    from tortoise.connection import connections

    return connections.get("default")._connection._conn.total_changes
