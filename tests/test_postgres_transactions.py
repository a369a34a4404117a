"""PostgreSQL: a connection lost as a transaction hands it back to the pool. The commit went through; the task
must neither be told it failed nor keep the lost connection as its own.

Seen in CI: the worker's retention loop committed a batch, PostgreSQL went away while the pool reset the
connection (`RESET ALL`), and Tortoise, whose transaction block gives the task its connection back only after
the pool took the old one, left the loop on a connection already handed back. Every query of that loop then
failed with "connection has been released back to the pool", logged with a traceback as if it were a bug."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from pulse import db
from pulse.models import Team
from tests.conftest import ENGINE
from tests.faults import Proxy

pytestmark = pytest.mark.skipif(ENGINE != "postgres", reason="the pool of connections is PostgreSQL's")


async def test_a_connection_lost_while_it_goes_back_to_the_pool_loses_nothing_and_leaves_the_task_working(
    database_url,
):
    parts = urlsplit(database_url)
    proxy = Proxy(parts.port or 5432, cut_at=b"RESET ALL")  # what the pool sends as it takes a connection back
    await proxy.start()
    try:
        async with db.connected(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()):
            default = connections.get("default")
            async with in_transaction():
                await Team.create(slug="kept", name="Kept")
            assert proxy.dropped == 1, "the connection was not lost as it went back: nothing was tested"
            assert connections.get("default") is default  # not the transaction's, handed back
            assert await Team.filter(slug="kept").exists()
            async with in_transaction():  # and the next transaction of the task works too
                await Team.create(slug="next", name="Next")
            assert await Team.filter(slug__in=["kept", "next"]).count() == 2
    finally:
        await proxy.cut()
