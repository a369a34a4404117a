"""/healthz tells a monitor the truth: the database takes writes, a worker loops, no e-mail waits too long."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager
from tortoise.connection import connections

from pulse.app import create_app
from pulse.models import OutboxMessage, WorkerHeartbeat

HEALTHY = {
    "status": "ok",
    "problems": [],
    "database": {"writable": True, "error": None},
    "worker": {"last_loop_at": None, "seconds_ago": None, "stale_after_seconds": 75},
    "outbox": {"due": 0, "oldest_due_seconds": None, "limit_seconds": 900},
    "smtp": {"last_ok_at": None, "last_error": None, "last_error_at": None},
}


async def due_email(waited: timedelta) -> OutboxMessage:
    return await OutboxMessage.create(
        kind="password_reset",
        to_email="alice@example.com",
        locale="en",
        payload={"user_id": 1},
        next_attempt_at=datetime.now(UTC) - waited,
        message_id=f"<{waited.total_seconds()}@pulse.test>",
    )


async def test_health_reports_every_check_and_is_ok_on_a_new_installation(client: httpx.AsyncClient):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == HEALTHY


async def test_health_reports_the_loop_of_a_running_worker(mail_settings, catalog, smtp):
    app = create_app(mail_settings, catalog=catalog, run_worker=True)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            for _ in range(50):
                body = (await http.get("/healthz")).json()
                if body["worker"]["last_loop_at"]:
                    break
                await asyncio.sleep(0.1)
        [beat] = await WorkerHeartbeat.all()
    assert body["status"] == "ok", body
    assert body["worker"]["seconds_ago"] <= 2
    assert beat.last_loop_at >= datetime.fromisoformat(body["worker"]["last_loop_at"])


async def test_health_is_503_when_no_worker_has_finished_a_loop_for_too_long(client: httpx.AsyncClient):
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    await WorkerHeartbeat.create(name="web-1:4242", started_at=long_ago, last_loop_at=long_ago)
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert 600 <= body["worker"]["seconds_ago"] <= 602
    [problem] = body["problems"]
    assert problem.startswith("No worker has finished a loop for 60")
    assert problem.endswith(" s (the limit is 75 s): start `pulse worker`, or read its log.")


async def test_health_is_503_when_a_due_email_has_waited_more_than_15_minutes(client: httpx.AsyncClient):
    await due_email(timedelta(minutes=2))
    assert (await client.get("/healthz")).json()["outbox"]["due"] == 1  # due for a short while: healthy
    await due_email(timedelta(minutes=20))
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["outbox"]["due"] == 2
    assert 1200 <= body["outbox"]["oldest_due_seconds"] <= 1202
    [problem] = body["problems"]
    assert problem.startswith("The oldest due e-mail has waited 120")
    assert problem.endswith(" s (the limit is 900 s): check the workers and the SMTP relay.")


async def test_an_smtp_error_is_reported_but_alone_is_not_a_503(client: httpx.AsyncClient):
    now = datetime.now(UTC)
    await WorkerHeartbeat.create(
        name="worker-1:7",
        started_at=now,
        last_loop_at=now,
        last_smtp_ok_at=now - timedelta(minutes=3),
        last_smtp_error="SMTPConnectError: Error connecting to 10.0.0.9 on port 25",
        last_smtp_error_at=now - timedelta(minutes=1),
    )
    response = await client.get("/healthz")
    assert response.status_code == 200
    smtp = response.json()["smtp"]
    assert smtp["last_error"] == "SMTPConnectError: Error connecting to 10.0.0.9 on port 25"
    assert datetime.fromisoformat(smtp["last_error_at"]) == now - timedelta(minutes=1)
    assert datetime.fromisoformat(smtp["last_ok_at"]) == now - timedelta(minutes=3)


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
                response = await asyncio.wait_for(http.get("/healthz"), 10)
        finally:
            setattr(connection, where[0], original)
            await connection.close()
            # the failed connection attempt leaves a worker thread behind: let it finish while the loop lives
            gc.collect()
            await asyncio.sleep(0.05)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["writable"] is False
    assert body["problems"] == ["The database cannot be reached. Try again later."]
    assert body["worker"] is None and body["outbox"] is None and body["smtp"] is None
