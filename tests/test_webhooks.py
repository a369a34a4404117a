"""Webhooks reach a real local HTTP receiver, signed; a receiver that is down loses nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pulse import claims, webhooks
from pulse.app import create_app
from pulse.models import WebhookDelivery
from tests.conftest import free_port, make_org, make_settings, old_nonce, sent_invitation, survey_url

SECRET = "webhook-secret-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.down = False

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        if self.down:
            return Response("maintenance", status_code=503)
        self.requests.append((dict(request.headers), body))
        return Response(status_code=204)


@pytest.fixture
async def receiver():
    found = Receiver()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", found.endpoint, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    server.should_exit = True
    await task


@pytest.fixture
async def hooked(database_url, catalog, receiver, smtp):
    settings = make_settings(
        database_url,
        PULSE_WEBHOOK_URL=receiver.url,
        PULSE_WEBHOOK_SECRET=SECRET,
        PULSE_SMTP_PORT=str(smtp.port),
        PULSE_QUIET_HOURS="off",
    )
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await make_org()
        yield app, settings


async def answer(app, settings, invitation, score, comment):
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
        reply = await client.post(
            survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"}
        )
        assert reply.status_code == 200


async def test_events_are_signed_and_delivered(hooked, catalog, receiver):
    app, settings = hooked
    invitation = await sent_invitation(settings, catalog)
    await answer(app, settings, invitation, 1, "Slow")
    assert await webhooks.deliver_due(settings) == 2
    events = [(h["x-pulse-event"], json.loads(body)) for h, body in receiver.requests]
    assert [name for name, _ in events] == ["case.opened", "response.recorded"]
    recorded = events[1][1]
    assert recorded["event"] == "response.recorded"
    assert recorded["data"]["score"] == 1 and recorded["data"]["comment"] == "Slow"
    assert recorded["data"]["band"] == "unhappy"
    for headers, body in receiver.requests:
        assert webhooks.verify(SECRET, headers["x-pulse-signature"], body)
        assert not webhooks.verify("another-secret-entirely", headers["x-pulse-signature"], body)
        assert not webhooks.verify(SECRET, headers["x-pulse-signature"], body + b" ")
    old = webhooks.signature(SECRET, int(datetime.now(UTC).timestamp()) - 3600, b"{}")
    assert not webhooks.verify(SECRET, old, b"{}")  # a replay an hour later is refused


async def test_a_receiver_down_for_an_hour_loses_nothing(hooked, catalog, receiver):
    app, settings = hooked
    invitation = await sent_invitation(settings, catalog)
    await answer(app, settings, invitation, 2, "Meh")
    receiver.down = True
    now = datetime.now(UTC)
    moment = now
    while moment < now + timedelta(hours=1):  # the worker keeps trying through the outage
        await webhooks.deliver_due(settings, now=moment)
        moment += timedelta(minutes=5)
    pending = await WebhookDelivery.all()
    assert {d.status for d in pending} == {"pending"} and all(d.attempts >= 3 for d in pending)
    assert pending[0].last_error == "HTTP 503"
    receiver.down = False
    moment = max(d.next_attempt_at for d in pending) + timedelta(seconds=1)
    assert await webhooks.deliver_due(settings, now=moment) == 2
    assert {d.status for d in await WebhookDelivery.all()} == {"delivered"}
    assert [h["x-pulse-event"] for h, _ in receiver.requests] == ["case.opened", "response.recorded"]


async def test_a_delivery_held_by_a_dead_worker_is_taken_over_once_and_its_late_result_is_not_written(
    hooked, catalog, receiver
):
    app, settings = hooked
    invitation = await sent_invitation(settings, catalog)
    await answer(app, settings, invitation, 1, "Slow")
    stale_after = timedelta(seconds=settings.outbox_claim_seconds)
    held = await claims.claim("webhook_delivery", 1, "worker-that-dies", stale_after)  # then it is killed
    assert len(held) == 1
    assert await webhooks.deliver_due(settings, worker="healthy") == 1  # only the other event: the claim is fresh
    later = datetime.now(UTC) + stale_after + timedelta(seconds=1)
    assert await webhooks.deliver_due(settings, now=later, worker="healthy") == 1  # stale: taken over
    assert len(receiver.requests) == 2  # each event once
    # the dead worker was only frozen: its request fails now, and its result must not overwrite the new holder's
    receiver.down = True
    row = await WebhookDelivery.get(id=held[0])
    async with httpx.AsyncClient(timeout=5) as client:
        await webhooks._deliver(row, settings, client, "worker-that-dies")
    assert (await WebhookDelivery.get(id=held[0])).status == "delivered"
