"""Ingest: touchpoint events per second through POST /api/v1/touchpoints in 1,000-event batches.

Run: .venv/bin/python -m bench.ingest [--engine sqlite|postgres] [--batches 30]
Target: >= 20,000 events/s on SQLite on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import database, server
from pulse import db
from pulse.accounts import create_api_key

TYPES = ["support_ticket_closed", "purchase", "onboarding_visit", "renewal", "return_processed", "complaint_closed"]


async def make_key(url: str) -> str:
    async with db.connected(url):
        _, secret = await create_api_key("bench", ["touchpoints:write"])
    return secret


def batch(number: int, size: int, rng: random.Random) -> dict:
    now = datetime.now(UTC)
    events = []
    for i in range(size):
        person = rng.randrange(200_000)  # people come back: some events hit known contacts and fatigue
        events.append({
            "external_id": f"B{number}-{i}",
            "type": rng.choice(TYPES),
            "occurred_at": (now - timedelta(minutes=rng.randrange(60 * 24 * 3))).isoformat(),
            "contact": {"external_id": f"P{person}", "email": f"p{person}@example.com",
                        "locale": rng.choice(["en", "pl", "it", "sl"]), "timezone": "Europe/Warsaw"},
            "team": rng.choice(["support-a", "support-b", "sales"]),
            "channel": "phone",
        })  # fmt: skip
    return {"events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(1)
    bodies = [batch(n, 1000, rng) for n in range(args.batches + 2)]
    with database(args.engine) as url:
        key = asyncio.run(make_key(url))
        with server(url) as base, httpx.Client(base_url=base, timeout=60) as http:
            headers = {"authorization": f"Bearer {key}"}
            for body in bodies[:2]:  # warm-up: imports, first contacts, caches
                http.post("/api/v1/touchpoints", json=body, headers=headers).raise_for_status()
            timings = []
            for body in bodies[2:]:
                start = time.perf_counter()
                response = http.post("/api/v1/touchpoints", json=body, headers=headers)
                timings.append(time.perf_counter() - start)
                assert response.status_code == 202, response.text
    total = sum(timings)
    events = 1000 * len(timings)
    print(f"engine: {args.engine}")
    print(f"batches: {len(timings)} x 1000 events, {events / total:,.0f} events/s")
    print(f"batch latency: median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
