"""/healthz tells a load balancer whether Pulse and its database answer."""

from __future__ import annotations

import asyncio
import gc

import httpx
from asgi_lifespan import LifespanManager
from tortoise.connection import connections

from pulse.app import create_app


async def test_health_is_ok_when_the_database_answers(client: httpx.AsyncClient):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_is_503_when_the_database_is_gone(settings, catalog):
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await connections.get("default").close()
        # a closed SQLite connection reopens lazily; point it at a path that cannot be opened instead
        connection = connections.get("default")
        where = ("filename", "/nonexistent/dir/pulse.sqlite3") if hasattr(connection, "filename") else ("port", 1)
        original = getattr(connection, where[0])
        setattr(connection, *where)  # SQLite: a path that cannot be opened; PostgreSQL: a port nobody listens on
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                response = await http.get("/healthz")
        finally:
            setattr(connection, where[0], original)
            await connection.close()
            # the failed connection attempt leaves a worker thread behind: let it finish while the loop lives
            gc.collect()
            await asyncio.sleep(0.05)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}
