"""Export: rows per second and peak memory of `pulse export responses` over a 1M-answer database.

Run: .venv/bin/python -m bench.export [--engine sqlite|postgres] [--size 1000000]
Target: >= 100,000 rows/s and < 150 MB peak RSS (the export streams in constant memory).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time

from bench.common import ROOT, database, environment
from bench.trends import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    with database(args.engine) as url:
        asyncio.run(build(url, args.size))
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
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"{args.engine}: exported {args.size:,} rows in {elapsed:.1f} s = {args.size / elapsed:,.0f} rows/s "
        f"(process start included); peak RSS of the export process {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
