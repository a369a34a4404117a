"""Webhooks: signed JSON events for the configured URL, delivered by the worker from an outbox with retries.

Each POST carries `X-Pulse-Event`, `X-Pulse-Delivery` (the id: deduplicate on it) and
`X-Pulse-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with PULSE_WEBHOOK_SECRET>`.
A receiver that is down keeps its events: attempts back off up to 15 minutes apart for about a day.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from datetime import UTC, datetime, timedelta

import httpx
from tortoise.connection import connections

from pulse.models import WebhookDelivery
from pulse.settings import Settings

log = logging.getLogger("pulse.webhooks")

EVENTS = ("response.recorded", "case.opened", "case.updated")
MAX_ATTEMPTS = 100
BACKOFF_CAP = timedelta(minutes=15)
CLAIM_TIMEOUT = timedelta(minutes=5)


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


async def _claim(batch: int, now: datetime) -> list[int]:
    connection = connections.get("default")
    stale = now - CLAIM_TIMEOUT
    if connection.capabilities.dialect == "postgres":
        sql = (
            "UPDATE webhook_delivery SET status = 'sending', claimed_at = $1, attempts = attempts + 1 WHERE id IN "
            "(SELECT id FROM webhook_delivery WHERE (status = 'pending' AND next_attempt_at <= $1) OR "
            "(status = 'sending' AND claimed_at < $2) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        params: list = [now, stale, batch]
    else:
        sql = (
            "UPDATE webhook_delivery SET status = 'sending', claimed_at = ?, attempts = attempts + 1 WHERE id IN "
            "(SELECT id FROM webhook_delivery WHERE (status = 'pending' AND next_attempt_at <= ?) OR "
            "(status = 'sending' AND claimed_at < ?) ORDER BY id LIMIT ?) "
            "AND (status = 'pending' OR claimed_at < ?) RETURNING id"
        )
        params = [now, now, stale, batch, stale]
    rows = await connection.execute_query_dict(sql, params)
    return sorted(row["id"] for row in rows)


async def deliver_due(settings: Settings, client: httpx.AsyncClient | None = None, now: datetime | None = None) -> int:
    """Send the due events in order (a worker step); returns how many were attempted."""
    if not settings.webhook_url:
        return 0
    now = now or datetime.now(UTC)
    ids = await _claim(50, now)
    if not ids:
        return 0
    own = client is None
    client = client or httpx.AsyncClient(timeout=10)
    try:
        for delivery in await WebhookDelivery.filter(id__in=ids).order_by("id"):
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
            if error is None:
                delivery.status, delivery.delivered_at, delivery.last_error = "delivered", datetime.now(UTC), None
            elif delivery.attempts >= MAX_ATTEMPTS:
                delivery.status, delivery.last_error = "failed", error
            else:
                delivery.status, delivery.last_error = "pending", error
                delivery.next_attempt_at = datetime.now(UTC) + backoff(delivery.attempts)
            await delivery.save(update_fields=["status", "delivered_at", "last_error", "next_attempt_at"])
    finally:
        if own:
            await client.aclose()
    return len(ids)
