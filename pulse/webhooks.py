"""Webhooks: signed JSON events for the configured URL, delivered by the worker from an outbox with retries.

Each POST carries `X-Pulse-Event`, `X-Pulse-Delivery` (the id: deduplicate on it) and
`X-Pulse-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with PULSE_WEBHOOK_SECRET>`.
A receiver that is down keeps its events: attempts back off up to 15 minutes apart for about a day.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from datetime import UTC, datetime, timedelta

import httpx

from pulse import claims
from pulse.models import WebhookDelivery
from pulse.outbox import worker_name
from pulse.settings import Settings

log = logging.getLogger("pulse.webhooks")

EVENTS = ("response.recorded", "case.opened", "case.updated")
MAX_ATTEMPTS = 100
BACKOFF_CAP = timedelta(minutes=15)
TABLE = "webhook_delivery"
BATCH = 10  # a receiver that hangs holds ten events at most, each for its 10 s timeout


async def enqueue(event: str, payload: dict, settings: Settings, now: datetime) -> None:
    """Queue an event in the caller's transaction (nothing is queued when no webhook is configured)."""
    if not settings.webhook_url:
        return
    assert event in EVENTS
    body = {"event": event, "created_at": now.isoformat(), "data": payload}
    await WebhookDelivery.create(event=event, payload=body, next_attempt_at=now)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: check the signature and that it is recent (replays are refused)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    now = now if now is not None else datetime.now(UTC).timestamp()
    expected = signature(secret, timestamp, body)
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, header)


def backoff(attempts: int) -> timedelta:
    delay = min(timedelta(seconds=10) * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * (0.5 + random.random())


async def deliver_due(
    settings: Settings,
    client: httpx.AsyncClient | None = None,
    now: datetime | None = None,
    worker: str | None = None,
) -> int:
    """Send the due events in order (a worker step), each result written as soon as the receiver answers;
    returns how many were attempted. A kill leaves at most the one event in flight to be sent again."""
    if not settings.webhook_url:
        return 0
    worker = worker or f"{worker_name()}:webhooks"
    ids = await claims.claim(TABLE, BATCH, worker, timedelta(seconds=settings.outbox_claim_seconds), now)
    if not ids:
        return 0
    own = client is None
    client = client or httpx.AsyncClient(timeout=10)
    untried = list(ids)
    try:
        async with claims.heartbeat(TABLE, worker, settings.outbox_claim_seconds / 4):
            for delivery in await WebhookDelivery.filter(id__in=ids).order_by("id"):
                await _deliver(delivery, settings, client, worker)
                untried.remove(delivery.id)
    finally:
        if untried:  # stopped early: the rest is due again at once, for this worker or another
            try:
                await asyncio.shield(claims.release(TABLE, worker, untried))
            except Exception as error:  # the database is away: the claims go stale and are taken over
                log.warning("could not release %d claimed webhook deliveries: %s", len(untried), error)
        if own:
            await client.aclose()
    return len(ids) - len(untried)


async def _deliver(delivery: WebhookDelivery, settings: Settings, client: httpx.AsyncClient, worker: str) -> None:
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    stamp = int(datetime.now(UTC).timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "Pulse-Webhooks/1",
        "x-pulse-event": delivery.event,
        "x-pulse-delivery": str(delivery.id),
        "x-pulse-signature": signature(settings.webhook_secret, stamp, body),
    }
    try:
        answer = await client.post(settings.webhook_url, content=body, headers=headers)
        error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"
    changes: dict = {"last_error": error}
    if error is None:
        changes.update(status="delivered", delivered_at=datetime.now(UTC))
    elif delivery.attempts >= MAX_ATTEMPTS:
        changes.update(status="failed")
    else:
        changes.update(status="pending", next_attempt_at=datetime.now(UTC) + backoff(delivery.attempts))
    # only while this worker still holds the claim: a result never overwrites another worker's
    if not await WebhookDelivery.filter(id=delivery.id, status="sending", claimed_by=worker).update(**changes):
        log.warning("webhook delivery %s: its claim passed to another worker; result not written", delivery.id)
