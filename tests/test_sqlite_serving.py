"""What a long-running process adds on SQLite (pulse.sqlite_engine.serving): the write-ahead log is copied back by
a thread of its own, not inside a COMMIT, a request's first lookups do not wait for another task's write
transaction, and an answer link's invitation is read on the event loop's own connection."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from pulse import accounts, db, responses, sqlite_engine
from pulse.models import Invitation, Team
from tests.conftest import ENGINE, event, make_key, sent_invitation

sqlite_only = pytest.mark.skipif(ENGINE != "sqlite", reason="SQLite's write-ahead log")

# more pages than SQLite's automatic checkpoint waits for (1,000), in one transaction
BIG_WRITE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)"
    " INSERT INTO scratch SELECT randomblob(4000) FROM n"
)


def log_frames(path: str) -> tuple[int, int]:
    """(frames in the log, frames of it copied back into the file), from the wal-index header in the -shm file
    (sqlite.org/walformat.html: mxFrame at byte 16, nBackfill at byte 96, in the machine's byte order). Read by
    another process: closing a file of the database here would drop this process's POSIX locks on it."""
    script = f"import sys; h = open({f'{path}-shm'!r}, 'rb').read(100); print(h[16:20].hex(), h[96:100].hex())"
    frames, copied = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    return int.from_bytes(bytes.fromhex(frames), sys.byteorder), int.from_bytes(bytes.fromhex(copied), sys.byteorder)


async def big_commit() -> None:
    async with in_transaction():
        await db.execute(BIG_WRITE)


@sqlite_only
async def test_a_commit_only_appends_to_the_log_and_the_checkpointer_copies_it_back(database_url):
    path = database_url.removeprefix("sqlite://")
    async with db.connected(database_url):
        await db.execute("CREATE TABLE scratch (b BLOB)")
        client = connections.get("default")
        # without it, the COMMIT that takes the log past 1,000 pages copies them all back before it returns
        await big_commit()
        frames, copied = log_frames(path)
        assert frames > 1000 and copied == frames
        async with sqlite_engine.serving(client, interval=3600) as idle:  # a checkpointer that does not look yet
            assert (await db.fetch("PRAGMA wal_autocheckpoint"))[0][0] == sqlite_engine.WalCheckpointer.BACKSTOP
            await big_commit()
            frames, copied = log_frames(path)
            assert frames > 1000 and copied < frames  # the COMMIT returned without copying back
            assert idle.checkpoints == 0
        # the rows are committed: another connection reads them
        other = sqlite3.connect(path)
        assert other.execute("SELECT COUNT(*) FROM scratch").fetchone()[0] == 3000
        other.close()
        async with sqlite_engine.serving(client, interval=0.05) as checkpointer:
            await big_commit()
            deadline = time.monotonic() + 10
            while checkpointer.checkpoints == 0 or log_frames(path)[1] < log_frames(path)[0]:
                assert time.monotonic() < deadline, "the checkpointer did not copy the log back"
                await asyncio.sleep(0.05)
        async with in_transaction():
            assert (await db.fetch("SELECT COUNT(*) FROM scratch"))[0][0] == 4500


async def held_transaction(entered: asyncio.Event, release: asyncio.Event) -> None:
    """A write transaction left open (as a 1,000-event ingest holds one) until `release`."""
    async with in_transaction():
        await Team.create(slug="held", name="held")
        entered.set()
        await release.wait()


async def test_api_keys_are_checked_while_another_write_transaction_is_open(client: httpx.AsyncClient):
    wrong_scope = await make_key("cases:read")
    revoked = await make_key("touchpoints:write")
    assert await accounts.revoke_api_key(revoked.split("_")[1])
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(held_transaction(entered, release))
    try:
        await asyncio.wait_for(entered.wait(), 10)
        for key, status in (("pulse_nokey_0123456789", 401), (wrong_scope, 403), (revoked, 401)):
            response = await asyncio.wait_for(
                client.post("/api/v1/touchpoints", json=[event(1)], headers={"authorization": f"Bearer {key}"}), 5
            )
            assert response.status_code == status, response.text
        assert not holder.done()  # answered while the transaction was still open
    finally:
        release.set()
        await holder
    assert await Team.filter(slug="held").exists()


async def held_thread(entered: threading.Event, release: threading.Event) -> None:
    """aiosqlite's thread kept busy (as by a long statement) until `release`."""
    client = connections.get("default")
    await sqlite_engine.call_in_thread(client, lambda raw: (entered.set(), release.wait(30)))


@sqlite_only
async def test_an_answer_links_invitation_is_read_on_the_event_loop_while_sqlites_thread_is_busy(
    mail_app, mail_settings, catalog
):
    invitation = await sent_invitation(mail_settings, catalog, 1)
    entered, release = threading.Event(), threading.Event()
    holder = asyncio.create_task(held_thread(entered, release))
    try:
        assert await asyncio.to_thread(entered.wait, 10)
        found = await asyncio.wait_for(responses.invited(invitation.id), 5)  # no hop to the busy thread
        assert (found.id, found.survey_id, found.locale) == (invitation.id, invitation.survey_id, invitation.locale)
        assert found.touchpoint_type == "support_ticket_closed" and found.team_id is not None
        assert await asyncio.wait_for(responses.invited(invitation.id + 1000), 5) is None
        assert not holder.done()
    finally:
        release.set()
        await holder


async def test_inside_a_transaction_the_link_is_read_with_this_tasks_own_writes(mail_app, mail_settings, catalog):
    invitation = await sent_invitation(mail_settings, catalog, 1)
    async with in_transaction():
        await Invitation.filter(id=invitation.id).update(locale="sl")  # not committed yet
        assert (await responses.invited(invitation.id)).locale == "sl"
    assert (await responses.invited(invitation.id)).locale == "sl"  # committed


@sqlite_only
async def test_the_event_loops_connection_gives_none_rather_than_an_error(mail_app, mail_settings, catalog):
    invitation = await sent_invitation(mail_settings, catalog, 1)
    reader = sqlite_engine.LOOP_READER
    assert reader is not None
    assert reader.rows("SELECT id FROM invitation WHERE id = ?", [invitation.id]) == [(invitation.id,)]
    # sqlite3 refuses the connection to any other thread: the caller then reads through the usual path
    assert await asyncio.to_thread(reader.rows, "SELECT id FROM invitation WHERE id = ?", [invitation.id]) is None
    assert reader.rows("SELECT no_such_column FROM invitation", []) is None
    assert (await responses.invited(invitation.id)).id == invitation.id
