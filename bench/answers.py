"""Answers: recorded answers per second through POST /s/{token} on one uvicorn worker, against a bare
Starlette endpoint that returns a constant; prints both, the ratio, and p50/p99 latency.

Run: .venv/bin/python -m bench.answers [--engine sqlite|postgres] [--answers 3000] [--concurrency 16]
Target (SQLite): ratio >= 0.35, p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import ROOT, database, free_port, server
from pulse import db, tokens
from pulse.catalog import load_catalog
from pulse.models import Invitation, Response
from pulse.settings import load_settings
from pulse.touchpoints import ingest

SECRET = "bench-secret-key-0123456789"  # noqa: S105 - a throwaway benchmark database


async def prepare(url: str, count: int) -> list[tuple[str, dict]]:
    settings = load_settings(
        environ={
            "PULSE_DATABASE_URL": url,
            "PULSE_SECRET_KEY": SECRET,
            "PULSE_SURVEYS_DIR": "surveys",
            "PULSE_QUIET_HOURS": "off",
        },
        env_file=None,
    )
    catalog = load_catalog("surveys")
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    ids: list[int] = []
    async with db.connected(url):
        for start in range(0, count, 1000):
            events = [
                {
                    "external_id": f"E{n}",
                    "type": "support_ticket_closed",
                    "occurred_at": occurred,
                    "contact": {"external_id": f"C{n}", "email": f"c{n}@example.com", "locale": "en"},
                }
                for n in range(start, min(start + 1000, count))
            ]
            ids += [o.invitation_id for o in await ingest(events, catalog, settings)]
        await Invitation.filter(id__in=ids).update(status="sent", sent_at=datetime.now(UTC))
    rendered = time.time() - 5  # pages "rendered" five seconds ago: a person's pace
    return [
        (
            f"/s/{tokens.make_token(SECRET, 'survey', i)}",
            {"score": "4", "nonce": tokens.make_nonce(SECRET, f"invitation:{i}", rendered), "website": ""},
        )
        for i in ids
    ]


async def load(base: str, requests: list[tuple[str, dict]], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = list(reversed(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while queue:
                path, form = queue.pop()
                start = time.perf_counter()
                answer = await client.post(path, data=form, headers={"accept": "application/json"})
                latencies.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(requests) / elapsed, latencies


@contextlib.contextmanager
def bare_server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(port), "--log-level", "warning"], cwd=ROOT
    )
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def recorded(url: str) -> int:
    async with db.connected(url):
        return await Response.all().count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--answers", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with database(args.engine) as url:
        requests = asyncio.run(prepare(url, args.answers))
        with server(url, PULSE_SECRET_KEY=SECRET) as base:
            asyncio.run(load(base, requests[:100], args.concurrency))  # warm-up
            rate, latencies = asyncio.run(load(base, requests[100:], args.concurrency))
        stored = asyncio.run(recorded(url))
    with bare_server() as base:
        bare_rate, bare_latencies = asyncio.run(load(base, requests[100:], args.concurrency))
    assert stored == len(requests), (stored, len(requests))
    print(f"engine: {args.engine}, answers: {len(requests) - 100}, concurrency: {args.concurrency}")
    print(
        f"POST /s/{{token}}: {rate:,.0f} answers/s, p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    print(
        f"bare endpoint:   {bare_rate:,.0f} requests/s, p50 {statistics.median(bare_latencies) * 1000:.1f} ms, "
        f"p99 {percentile(bare_latencies, 0.99) * 1000:.1f} ms"
    )
    print(f"ratio: {rate / bare_rate:.2f} (target >= 0.35)")


if __name__ == "__main__":
    main()
