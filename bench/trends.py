"""Trends at scale: 52 weekly points x every team, from rollups vs a full-scan SQL aggregate over answers.

Run: .venv/bin/python -m bench.trends [--engine sqlite|postgres] [--sizes 1000000,10000000] [--keep DIR]
Builds a database per size (bulk insert, progress bar), rebuilds the rollups (timed), then times both ways to the
same numbers and checks they are equal. With --keep (SQLite) each size's database is kept in DIR and reused by
the next run, which then only rebuilds and measures: building ten million answers takes half an hour here.
Targets: rollups < 100 ms at 10M, <= 1/10 of the full scan, the 10M time <= 1.5 x the 1M time, and the rollups
rebuilt in < 120 s at 10M on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from bench.common import database
from pulse import db, metrics, rollups, trends
from pulse.catalog import load_catalog
from pulse.models import Team

TEAMS = [
    ("care", None),
    ("warsaw", "care"),
    ("ljubljana", "care"),
    ("milan", "care"),
    ("sales", None),
    ("onboarding", "sales"),
    ("accounts", "sales"),
]
LEAVES = ["warsaw", "ljubljana", "milan", "onboarding", "accounts"]
TODAY = date(2026, 11, 30)
COLUMNS = (
    "survey_id",
    "question_id",
    "score",
    "scores",
    "comment",
    "locale",
    "answered_at",
    "day",
    "confirmed",
    "touchpoint_type",
    "team_id",
    "channel",
    "stage",
    "dimensions",
    "history",
    "discarded",
    "created_at",
    "updated_at",
)


async def build(url: str, size: int, *, insert: bool = True) -> dict[str, float]:
    """Insert `size` answers (unless `insert` is false: the database has them) and rebuild the rollups, timed."""
    rng = random.Random(size)
    timings = {"insert_s": 0.0}
    async with db.connected(url):
        if not insert:
            start = time.perf_counter()
            await rollups.rebuild(("plan", "region"))
            return {**timings, "rebuild_s": time.perf_counter() - start}
        ids = {}
        for slug, parent in TEAMS:
            ids[slug] = (await Team.create(slug=slug, name=slug.title(), parent_id=ids.get(parent))).id
        start = time.perf_counter()
        now = datetime.now(UTC)
        with tqdm(total=size, unit="answer", desc=f"{size:,} answers") as bar:
            for offset in range(0, size, 50_000):
                rows = []
                for _ in range(min(50_000, size - offset)):
                    day = TODAY - timedelta(days=rng.randrange(400))
                    team = rng.choice(LEAVES)
                    score = min(10, max(0, int(rng.gauss(7.5, 2.2))))
                    stamp = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
                    rows.append(
                        (
                            "nps",
                            "recommend",
                            score,
                            "{}",
                            "",
                            "en",
                            stamp,
                            day,
                            True,
                            rng.choice(("purchase", "renewal", "account_review")),
                            ids[team],
                            rng.choice(("phone", "web", "email")),
                            rng.choice(("active", "renewal")),
                            f'{{"plan": "{rng.choice(("basic", "pro"))}", "days_since_sale": {rng.randrange(700)}}}',
                            "[]",
                            False,
                            now,
                            now,
                        )
                    )
                await db.insert_many("response", COLUMNS, rows)
                bar.update(len(rows))
        timings["insert_s"] = time.perf_counter() - start
        start = time.perf_counter()
        await rollups.rebuild(("plan", "region"))
        timings["rebuild_s"] = time.perf_counter() - start
    return timings


async def full_scan(query: trends.TrendQuery) -> dict[str, list]:
    """The same trend straight from the answers: one GROUP BY over the response table."""
    points = trends.point_dates(query.start, query.end, query.interval)
    first = points[0] - timedelta(days=query.window_days - 1)
    scopes = await rollups.team_scopes()
    rows = await db.fetch(
        "SELECT team_id, day, score, COUNT(*) FROM response WHERE survey_id = ? AND confirmed = ? AND discarded = ?"
        " AND day >= ? AND day <= ? GROUP BY team_id, day, score",
        ["nps", True, False, first, query.end],
    )
    days: dict[str, dict] = {}
    for team_id, day, score, count in rows:
        day = day if isinstance(day, date) else date.fromisoformat(day)
        for slug in scopes.get(team_id, []):
            hist = days.setdefault(slug, {}).setdefault(day, [0] * 11)
            hist[score] += count
    return {
        slug: [metrics.nps(h).value for h in trends.rolling(series, points, query.window_days)]
        for slug, series in days.items()
    }


async def measure(url: str) -> tuple[float, float]:
    catalog = load_catalog("surveys")
    params = {
        "survey": "nps",
        "by": "team",
        "window": "28d",
        "interval": "week",
        "from": (TODAY - timedelta(weeks=51)).isoformat(),
        "to": TODAY.isoformat(),
    }
    query = trends.parse_query(params, catalog, ("plan", "region"), TODAY)
    async with db.connected(url):
        fast, result = [], None
        for _ in range(7):
            start = time.perf_counter()
            result = await trends.trend(query)
            fast.append(time.perf_counter() - start)
        start = time.perf_counter()
        scanned = await full_scan(query)
        slow = time.perf_counter() - start
    assert result is not None and len(result["groups"]) == len(TEAMS)
    for group in result["groups"]:
        values = [p["value"] for p in group["points"]]
        assert len(values) == 52
        assert values == scanned[group["key"]["team"]], group["key"]  # the same numbers, both ways
    return statistics.median(fast), slow


@contextlib.contextmanager
def kept(folder: Path, size: int) -> Iterator[str]:
    """A migrated SQLite database for this size in `folder`, left there for the next run."""
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite://{folder / f'trends-{size}.sqlite3'}"
    asyncio.run(db.migrate(url))
    yield url


def answers(url: str) -> int:
    async def count() -> int:
        async with db.connected(url):
            [(found,)] = await db.fetch("SELECT COUNT(*) FROM response")
            return found

    return asyncio.run(count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--keep", type=Path, help="SQLite: keep each size's database in this folder and reuse it")
    args = parser.parse_args()
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        with kept(args.keep, size) if args.keep else database(args.engine) as url:
            built = asyncio.run(build(url, size, insert=not args.keep or not answers(url)))
            print(f"{args.engine} {size:,} answers: rollups rebuilt in {built['rebuild_s']:.1f} s", flush=True)
            fast, slow = asyncio.run(measure(url))
        results[size] = fast
        print(
            f"{args.engine} {size:,} answers: built in {built['insert_s']:.0f} s (0: kept), rollups rebuilt in "
            f"{built['rebuild_s']:.0f} s; trends (52 weekly points x {len(TEAMS)} teams) from rollups "
            f"{fast * 1000:.1f} ms, full scan {slow * 1000:.0f} ms, ratio 1/{slow / fast:.0f}; numbers equal"
        )
    sizes = sorted(results)
    if len(sizes) > 1:
        print(f"largest / smallest trends time: {results[sizes[-1]] / results[sizes[0]]:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
