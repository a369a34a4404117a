"""Dashboard pages: server time per page on a 1M-answer database (p50 and p95 over repeated requests).

Run: .venv/bin/python -m bench.dashboard [--engine sqlite|postgres] [--size 1000000] [--repeat 30]
Target: < 150 ms p95 for a dashboard page.

The loyalty pages need customers: every NPS answer comes through an invitation of one of size/10 contacts (each
contact answers one team, as a customer mostly deals with one), and each contact also gives one CSAT answer
(size/10 more answers). The latest answers and the standings per scope are then rebuilt as `pulse rollups
rebuild` does. Each request is cold: the loyalty cache (only the period path has one) is emptied before it.
`?from=2000-01-01` is the period path (a window query over every answer), which is what the page without a
period computed before `loyalty_latest`; without a period the page reads `loyalty_standing` (counts and one page).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from bench.common import database
from bench.trends import COLUMNS, LEAVES, TODAY, build
from pulse import db, insights, loyalty
from pulse.accounts import create_user
from pulse.app import create_app, record_survey_versions
from pulse.catalog import load_catalog
from pulse.settings import load_settings

PAGES = [
    "/dashboard",
    "/dashboard?team=care",
    "/dashboard/breakdown?survey=nps&by=team",
    "/dashboard/breakdown?survey=nps&by=lifecycle&team=warsaw",
    "/dashboard/after-sale?survey=nps",
    "/dashboard/loyalty",
    "/dashboard/loyalty?team=warsaw",
    "/dashboard/loyalty?team=care",
    "/dashboard/loyalty?page=500",
    "/dashboard/loyalty?from=2000-01-01",
]
PASSWORD = "bench password 2026"  # noqa: S105 - a throwaway benchmark database


async def customers(url: str, size: int) -> dict[str, float]:
    """Contacts and invitations behind the answers, one CSAT answer per contact, then the latest answers."""
    rng = random.Random(size + 1)
    timings = {}
    async with db.connected(url):
        start = time.perf_counter()
        teams = dict(await db.fetch("SELECT slug, id FROM team"))
        leaves = [teams[slug] for slug in LEAVES]
        per_team = max(1, size // 10 // len(leaves))
        now = datetime.now(UTC)
        contact_rows = [
            (n, f"B-{n}", f"b{n}@example.com", f"Customer {n}", "en", "{}", now, now)
            for n in range(1, per_team * len(leaves) + 1)
        ]
        for first in range(0, len(contact_rows), 50_000):
            await db.insert_many(
                "contact",
                ("id", "external_id", "email", "name", "locale", "attributes", "created_at", "updated_at"),
                contact_rows[first : first + 50_000],
            )

        def contact_of(team_id: int) -> int:  # contacts n with n % teams == the team's place answer that team
            return 1 + leaves.index(team_id) + len(leaves) * rng.randrange(per_team)

        answers = await db.fetch("SELECT id, team_id FROM response ORDER BY id")
        invitation_columns = ("id", "survey_id", "contact_id", "locale", "status", "created_at")
        rows = [(rid, "nps", contact_of(team_id), "en", "answered", now) for rid, team_id in answers]
        for first in range(0, len(rows), 50_000):
            await db.insert_many("invitation", invitation_columns, rows[first : first + 50_000])
        await db.execute("UPDATE response SET invitation_id = id")
        next_id = answers[-1][0] + 1 if answers else 1
        csat_rows, invitation_rows = [], []
        for n, *_ in contact_rows:
            day = TODAY - timedelta(days=rng.randrange(400))
            stamp = datetime(day.year, day.month, day.day, 13, tzinfo=UTC)
            invitation_rows.append((next_id, "csat", n, "en", "answered", now))
            score = rng.choice((2, 3, 4, 4, 5, 5, 5))
            team_id = leaves[(n - 1) % len(leaves)]
            csat_rows.append(
                (next_id, next_id, "csat", "satisfaction", score, "{}", "", "en", stamp, day, True, "purchase",
                 team_id, "web", "active", "{}", "[]", False, now, now)
            )  # fmt: skip
            next_id += 1
        for first in range(0, len(csat_rows), 50_000):
            await db.insert_many("invitation", invitation_columns, invitation_rows[first : first + 50_000])
            await db.insert_many(
                "response",
                ("id", "invitation_id", *COLUMNS),
                csat_rows[first : first + 50_000],
            )
        # each survey e-mail was sent when it was answered: the overview's response rate counts those of its period
        sent = "SELECT r.answered_at FROM response r WHERE r.invitation_id = invitation.id"
        await db.execute(f"UPDATE invitation SET sent_at = ({sent})")  # noqa: S608 - constant text
        timings["customers_s"] = time.perf_counter() - start
        await record_survey_versions(load_catalog(Path("surveys")))  # the survey kinds loyalty_standing needs
        start = time.perf_counter()
        timings["latest_rows"] = await loyalty.rebuild()
        timings["latest_s"] = time.perf_counter() - start
        [(timings["standing_rows"],)] = await db.fetch("SELECT COUNT(*) FROM loyalty_standing")
        timings["contacts"] = len(contact_rows)
    return timings


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
                insights._cache.clear()  # cold: the loyalty pages compute every time
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
        made = asyncio.run(customers(url, args.size))
        timings = asyncio.run(measure(url, args.repeat))
    print(
        f"{args.engine}, {args.size:,} NPS answers + {made['contacts']:,} CSAT answers of {made['contacts']:,}"
        f" contacts; loyalty_latest and loyalty_standing rebuilt in {made['latest_s']:.1f} s"
        f" ({made['latest_rows']:,} and {made['standing_rows']:,} rows);"
        f" {args.repeat} requests per page (server time, in process, loyalty cache emptied before each):"
    )
    for path, found in timings.items():
        ordered = sorted(found)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(f"  {path:55} p50 {statistics.median(found) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
