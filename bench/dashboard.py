"""Dashboard pages: server time per page on a 1M-answer database (p50 and p95 over repeated requests).

Run: .venv/bin/python -m bench.dashboard [--engine sqlite|postgres] [--size 1000000] [--repeat 30]
Target: < 150 ms p95 for a dashboard page.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

import httpx
from asgi_lifespan import LifespanManager

from bench.common import database
from bench.trends import build
from pulse import db
from pulse.accounts import create_user
from pulse.app import create_app
from pulse.settings import load_settings

PAGES = [
    "/dashboard",
    "/dashboard?team=care",
    "/dashboard/breakdown?survey=nps&by=team",
    "/dashboard/breakdown?survey=nps&by=lifecycle&team=warsaw",
    "/dashboard/after-sale?survey=nps",
    "/dashboard/loyalty",
]
PASSWORD = "bench password 2026"  # noqa: S105 - a throwaway benchmark database


async def measure(url: str, repeat: int) -> dict[str, list[float]]:
    async with db.connected(url):
        await create_user("bench@example.com", PASSWORD, "admin")
    settings = load_settings(
        environ={
            "PULSE_DATABASE_URL": url,
            "PULSE_SECRET_KEY": "bench-secret-key-0123456789",
            "PULSE_SURVEYS_DIR": "surveys",
        },
        env_file=None,
    )
    app = create_app(settings)
    timings: dict[str, list[float]] = {}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
    ):
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        await client.post("/login", data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token})
        for path in PAGES:
            assert (await client.get(path)).status_code == 200, path  # warm-up
            found = []
            for _ in range(repeat):
                start = time.perf_counter()
                reply = await client.get(path)
                found.append(time.perf_counter() - start)
                assert reply.status_code == 200
            timings[path] = found
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with database(args.engine) as url:
        asyncio.run(build(url, args.size))
        timings = asyncio.run(measure(url, args.repeat))
    print(f"{args.engine}, {args.size:,} answers, {args.repeat} requests per page (server time, in process):")
    for path, found in timings.items():
        ordered = sorted(found)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(f"  {path:55} p50 {statistics.median(found) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
