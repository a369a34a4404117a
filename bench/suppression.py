"""What the suppression list (pulse/privacy.py) adds to each ingest batch: `privacy.suppressed` for 1,000 events
(1,000 addresses and 1,000 external ids) against a list of erased people, on a fresh SQLite file.

Run: .venv/bin/python -m bench.suppression [--listed 10000] [--runs 10]
Prints the median per batch for people not seen before (cold: two HMACs each), the same people again (warm: the
HMACs remembered, only the query), and an empty list (one `SELECT 1 ... LIMIT 1`, no HMAC).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from pulse import db, privacy
from pulse.models import Suppression

KEY = "bench-secret-key-0123456789abcdef"


async def _time(emails: set[str], ids: set[str]) -> float:
    start = time.perf_counter()
    await privacy.suppressed(KEY, emails, ids)
    return time.perf_counter() - start


async def main(listed: int, runs: int) -> None:
    url = f"sqlite://{tempfile.mkdtemp()}/suppression.sqlite3"
    await db.migrate(url)
    async with db.connected(url):
        await Suppression.bulk_create(
            [
                Suppression(digest=privacy.digest(KEY, "email", f"gone{i}@example.com"), kind="contact", erasure=str(i))
                for i in range(listed)
            ],
            batch_size=5000,
        )
        cold, warm = [], []
        for run in range(runs):
            emails = {f"person{run}-{i}@example.com" for i in range(1000)}
            ids = {f"C-{run}-{i}" for i in range(1000)}
            cold.append(await _time(emails, ids))
            warm.append(await _time(emails, ids))
        await Suppression.all().delete()
        empty = [await _time(emails, ids) for _ in range(runs)]
    ms = lambda values: f"{statistics.median(values) * 1000:.2f} ms"  # noqa: E731
    print(f"privacy.suppressed per 1,000-event batch, {listed:,} on the list, median of {runs}:")
    print(f"  cold (new people) {ms(cold)}, warm (same people) {ms(warm)}, empty list {ms(empty)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listed", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.listed, args.runs))
