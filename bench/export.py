"""Export: rows per second and peak memory of `pulse export responses` over a 1M-answer database.

Run: .venv/bin/python -m bench.export [--engine sqlite|postgres] [--size 1000000] [--repeat 3]
Target: >= 100,000 rows/s and < 150 MB peak RSS (the export streams in constant memory).

Each run is a new process, so its time includes the process start (imports, settings, the catalog, opening the
database). That fixed cost is measured apart, as the same command over an empty database, and the rows/s is
printed both with it and without it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time

from bench.common import ROOT, database, environment
from bench.trends import build


def export_seconds(url: str) -> float:
    """Wall time of one `pulse export responses --out /dev/null` process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pulse.cli", "export", "responses", "--out", "/dev/null"],
        env=environment(url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="exports timed (the median is printed)")
    args = parser.parse_args()
    with database(args.engine) as empty:
        starts = [export_seconds(empty) for _ in range(args.repeat)]
    with database(args.engine) as url:
        asyncio.run(build(url, args.size))
        runs = [export_seconds(url) for _ in range(args.repeat)]
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    elapsed, start = statistics.median(runs), statistics.median(starts)
    each = ", ".join(f"{r:.1f}" for r in runs)
    print(
        f"{args.engine}: exported {args.size:,} rows in {elapsed:.1f} s (median of {each})"
        f" = {args.size / elapsed:,.0f} rows/s with the process start; the start alone (same command, empty database)"
        f" {start:.2f} s, so {args.size / (elapsed - start):,.0f} rows/s without it; peak RSS of an export process"
        f" {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
