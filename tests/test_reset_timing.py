"""Asking for a password reset takes as long for an unknown address as for a known one: the reply's timing
does not tell which e-mails have an account."""

from __future__ import annotations

import re
import statistics
import time

import httpx

from pulse.models import OutboxMessage
from tests.conftest import persona

REQUESTS = 30


async def test_known_and_unknown_addresses_take_the_same_time(mail_app, org):
    # a new known address each time: asking twice within a minute sends (and costs) nothing the second time
    known = [(await persona(f"staff{n}@example.com", "analyst", f"Staff {n}")).email for n in range(REQUESTS)]
    unknown = [f"ghost{n}@example.com" for n in range(REQUESTS)]
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        page = await client.get("/password-reset")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        for warm_up in ("ghost@example.com", "alice@example.com"):
            await client.post("/password-reset", data={"email": warm_up, "csrf_token": token})
        for known_email, unknown_email in zip(known, unknown, strict=True):  # interleaved: drift hits both alike
            for kind, email in (("known", known_email), ("unknown", unknown_email)):
                started = time.perf_counter()
                reply = await client.post("/password-reset", data={"email": email, "csrf_token": token})
                timings[kind].append(time.perf_counter() - started)
                assert reply.status_code == 200
    assert await OutboxMessage.filter(kind="password_reset", to_email__in=known).count() == REQUESTS
    known_ms = statistics.median(timings["known"]) * 1000
    unknown_ms = statistics.median(timings["unknown"]) * 1000
    tolerance = max(0.1 * max(known_ms, unknown_ms), 2.0)
    assert abs(known_ms - unknown_ms) < tolerance, f"median known {known_ms:.1f} ms, unknown {unknown_ms:.1f} ms"
