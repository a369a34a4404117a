"""When the database cannot store anything, Pulse says so: 503 with a sentence and Retry-After, and /healthz agrees.

Real faults: the SQLite file on a small tmpfs that is filled up or remounted read-only, a write lock held by
another connection past the busy timeout, and PostgreSQL behind a TCP proxy that is cut. Each test also checks
that Pulse recovers once the fault clears.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from tortoise.connection import connections

from pulse import i18n, sqlite_engine
from pulse.app import create_app
from tests.conftest import ENGINE, PASSWORD, event, make_key, make_settings, persona
from tests.faults import Proxy, fill, tmpfs

FULL = "The database's disk is full: nothing can be stored until space is freed. Try again later."
READ_ONLY = "The database is read-only: nothing can be stored until it is writable again. Try again later."
BUSY = "The database is busy with another writer. Try again in a few seconds."
AWAY = "The database cannot be reached. Try again later."
PAGE_HINT = "Pulse cannot use its database at the moment. Please try again in a few minutes."


def sqlite_copy(source_url: str, target: Path) -> str:
    shutil.copyfile(source_url.removeprefix("sqlite://").split("?")[0], target)
    return f"sqlite://{target}"


@contextlib.asynccontextmanager
async def serving(database_url: str, catalog) -> AsyncIterator[httpx.AsyncClient]:
    """The app on `database_url`, through its lifespan; a client that sees 500s instead of exceptions."""
    app = create_app(make_settings(database_url), catalog=catalog)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=20) as http:
            yield http


async def within(seconds: float, awaitable):
    """A request must answer, not hang: a lock left behind by a failed query would hang it forever."""
    return await asyncio.wait_for(awaitable, seconds)


async def post_event(http: httpx.AsyncClient, key: str, number: int) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return await within(10, http.post("/api/v1/touchpoints", json={"events": [event(number)]}, headers=headers))


def assert_unavailable(reply: httpx.Response, sentence: str, retry_after: str = "30") -> None:
    assert reply.status_code == 503, reply.text
    assert reply.json() == {"error": sentence, "errors": []}
    assert reply.headers["retry-after"] == retry_after


async def sign_in_page(http: httpx.AsyncClient, locale: str) -> httpx.Response:
    """A person signing in (a write: the session) gets a page in their language."""
    form = await within(10, http.get("/login", headers={"accept-language": locale}))
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    data = {"email": "alice@example.com", "password": PASSWORD, "csrf_token": token}
    return await within(10, http.post("/login", data=data, headers={"accept-language": locale}))


@pytest.mark.skipif(ENGINE != "sqlite", reason="a disk fault of the SQLite file; PostgreSQL has its outage test")
async def test_a_full_disk_answers_503_with_a_sentence_and_healthz_says_so(database_url, tmp_path, catalog):
    with tmpfs(tmp_path / "disk") as disk:
        url = sqlite_copy(database_url, disk / "pulse.sqlite3")
        async with serving(url, catalog) as http:
            key = await make_key("touchpoints:write")
            await persona("alice@example.com", "admin", "Alice Admin")
            assert (await post_event(http, key, 1)).status_code == 202
            filler = fill(disk)
            for number in range(2, 22):  # every time, not only the first
                assert_unavailable(await post_event(http, key, number), FULL)
            page = await sign_in_page(http, "pl")
            assert page.status_code == 503
            assert page.headers["retry-after"] == "30"
            assert i18n.translate("pl", "Pulse is temporarily unavailable") in page.text
            assert i18n.translate("pl", PAGE_HINT) != PAGE_HINT
            assert i18n.translate("pl", PAGE_HINT) in page.text
            health = await within(10, http.get("/healthz"))
            assert health.status_code == 503
            assert health.json()["status"] == "unavailable"
            assert health.json()["database"] == {"writable": False, "error": "database or disk is full"}
            assert health.json()["problems"] == [FULL]
            filler.unlink()
            assert (await post_event(http, key, 30)).status_code == 202
            assert (await within(10, http.get("/healthz"))).status_code == 200


@pytest.mark.skipif(ENGINE != "sqlite", reason="a disk fault of the SQLite file; PostgreSQL has its outage test")
async def test_a_read_only_database_answers_503_and_healthz_says_so(database_url, tmp_path, catalog):
    with tmpfs(tmp_path / "disk") as disk:
        url = sqlite_copy(database_url, disk / "pulse.sqlite3")
        async with serving(url, catalog) as http:
            key = await make_key("touchpoints:write")
            assert (await post_event(http, key, 1)).status_code == 202
            # the file system turns read-only under a running Pulse (as ext4 does on an I/O error); Linux refuses
            # to remount while a file is open for writing, so the connections are closed first and reopen lazily
            # (the request connection, the reader, the event loop's reader and the ingest writer's child), and the
            # log's checkpointer is between two looks
            with sqlite_engine.CHECKPOINTER.busy:
                await sqlite_engine.WRITER.close()
                await connections.get("default").close()
                await sqlite_engine.READER.close()
                sqlite_engine.LOOP_READER.close()
                subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            try:
                for number in range(2, 6):
                    assert_unavailable(await post_event(http, key, number), READ_ONLY)
                health = await within(10, http.get("/healthz"))
                assert health.status_code == 503
                assert health.json()["database"]["writable"] is False
                assert health.json()["problems"] == [READ_ONLY]
            finally:
                await connections.get("default").close()
                subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
            assert (await post_event(http, key, 30)).status_code == 202
            assert (await within(10, http.get("/healthz"))).status_code == 200


@pytest.mark.skipif(ENGINE != "sqlite", reason="SQLite's single writer; PostgreSQL locks rows, not the database")
async def test_a_database_locked_past_the_busy_timeout_answers_503_and_does_not_hang(database_url, tmp_path, catalog):
    url = database_url + "?busy_timeout=300"
    async with serving(url, catalog) as http:
        key = await make_key("touchpoints:write")
        assert (await post_event(http, key, 1)).status_code == 202
        other = sqlite3.connect(url.removeprefix("sqlite://").split("?")[0], isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock, longer than the busy timeout
            for number in range(2, 6):
                assert_unavailable(await post_event(http, key, number), BUSY, retry_after="5")
            health = await within(10, http.get("/healthz"))
            assert health.status_code == 503
            assert health.json()["database"] == {"writable": False, "error": "database is locked"}
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert (await post_event(http, key, 30)).status_code == 202
        assert (await within(10, http.get("/healthz"))).status_code == 200


@pytest.mark.skipif(ENGINE != "postgres", reason="a PostgreSQL outage")
async def test_postgresql_down_answers_503_and_healthz_says_so_within_seconds(database_url, tmp_path, catalog):
    parts = urlsplit(database_url)
    proxy = Proxy(parts.port or 5432)
    await proxy.start()
    url = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    try:
        async with serving(url, catalog) as http:
            key = await make_key("touchpoints:write")
            await persona("alice@example.com", "admin", "Alice Admin")
            assert (await post_event(http, key, 1)).status_code == 202
            await proxy.cut()
            for number in range(2, 22):
                assert_unavailable(await post_event(http, key, number), AWAY)
            page = await sign_in_page(http, "sl")
            assert page.status_code == 503
            assert i18n.translate("sl", "Pulse is temporarily unavailable") in page.text
            assert i18n.translate("sl", PAGE_HINT) in page.text
            loop = asyncio.get_running_loop()
            began = loop.time()
            health = await within(10, http.get("/healthz"))
            assert loop.time() - began < 4  # bounded: a monitor must get an answer
            assert health.status_code == 503
            assert health.json()["database"]["writable"] is False
            assert health.json()["problems"] == [AWAY]
            await proxy.start()
            assert (await post_event(http, key, 30)).status_code == 202
            assert (await within(10, http.get("/healthz"))).status_code == 200
    finally:
        await proxy.cut()
